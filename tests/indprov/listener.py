"""System-test helpers: a pywbem listener on 127.0.0.1 and subscription shortcuts."""

import socket
import threading
import time

import pywbem

SUB_ID = "systest"
NS = "test/indprov"      # the indication test provider's namespace


def free_port() -> int:
    """A TCP port nobody listens on (now) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """A pywbem WBEMListener on 127.0.0.1 collecting (receive time, indication)."""

    def __init__(self, port=None, certfile=None, keyfile=None):
        self.port = port or free_port()
        self.secure = certfile is not None
        self.received = []
        self._cond = threading.Condition()
        if self.secure:
            self._lst = pywbem.WBEMListener("127.0.0.1", https_port=self.port,
                                            certfile=certfile, keyfile=keyfile)
        else:
            self._lst = pywbem.WBEMListener("127.0.0.1", http_port=self.port)
        self._lst.queue_get_timeout = 0.2      # pywbem's 2 s delays stop()
        self._lst.add_callback(self._got)
        self._lst.start()

    def _got(self, indication, host):
        with self._cond:
            self.received.append((time.time(), indication))
            self._cond.notify_all()

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}"

    def wait(self, count, timeout=20.0):
        """The first `count` indications (fewer if they do not come in time)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= count, timeout)
            return [ind for _t, ind in self.received[:count]]

    def stop(self):
        self._lst.stop()


def manager(srv, sub_id=SUB_ID):
    """(WBEMSubscriptionManager, server id) for the kvm-cimom `srv`."""
    sm = pywbem.WBEMSubscriptionManager(sub_id)
    return sm, sm.add_server(pywbem.WBEMServer(srv.conn("interop")))


def subscribe(sm, sid, url, query, source=(NS,), lang="WQL", fid="f1", did="d1"):
    """An owned destination, filter and subscription: (filter, destination, subscription)."""
    dest = sm.add_destination(sid, url, destination_id=did)
    filt = sm.add_filter(sid, list(source), query, query_language=lang, filter_id=fid)
    sub = sm.add_subscriptions(sid, filt.path, [dest.path])[0]
    return filt, dest, sub


def wait_for(cond, timeout=20.0, step=0.05):
    """Poll `cond` until it is true (bounded); its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()
