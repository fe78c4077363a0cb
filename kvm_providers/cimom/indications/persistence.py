"""The indication service's state file: subscriptions that survive a restart.

With a state directory, the service keeps its filters, listener
destinations, subscriptions (with their owners) and settings in one JSON
file there, written atomically (a temporary file, fsync, rename, fsync of
the directory).  A file that cannot be read, or is not of this format and
version, is moved aside (``indications.json.bad-<time>``) and the service
starts without subscriptions rather than not at all.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Optional

import pywbem
from pywbem import CIMDateTime, CIMInstance, CIMInstanceName

from ...provider import coerce
from ...schema import Schema
from ..names import INTEROP
from .model import REMOVAL_IGNORE, ServiceSettings, persistent_sub
from .store import Store

__all__ = ["STATE_FILE", "StateFile", "snapshot", "settings_from", "encode_instance",
           "decode_instance"]

LOG = logging.getLogger("kvm_providers.cimom.indications")

STATE_FILE = "indications.json"
_STATE_FORMAT = "kvm_providers-indications"
_STATE_VERSION = 1


# -- JSON encoding of instances --------------------------------------------------------------

def _encode_value(v: Any) -> Any:
    if isinstance(v, list):
        return [_encode_value(x) for x in v]
    if isinstance(v, CIMInstanceName):
        return {"ref": v.to_wbem_uri()}
    if isinstance(v, CIMDateTime):
        return str(v)
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return str(v)


def encode_instance(inst: CIMInstance) -> dict:
    """`inst` as JSON data (its class and non-NULL properties)."""
    return {"classname": inst.classname,
            "properties": {name: _encode_value(p.value)
                           for name, p in inst.properties.items() if p.value is not None}}


def decode_instance(schema: Schema, data: dict) -> CIMInstance:
    """An instance of the interop namespace from :func:`encode_instance`'s data, typed by
    the schema (properties the class no longer has are dropped)."""
    classname = data["classname"]
    spec = schema.spec(INTEROP, classname)
    inst = CIMInstance(spec.name)
    for name, value in (data.get("properties") or {}).items():
        pspec = spec.props.get(name.lower())
        if pspec is None:
            continue
        if pspec.type == "reference":
            value = CIMInstanceName.from_wbem_uri(value["ref"])
        else:
            value = coerce(pspec.type, pspec.is_array, value)
        inst[pspec.name] = pywbem.CIMProperty(pspec.name, value, type=pspec.type,
                                              is_array=pspec.is_array,
                                              reference_class=pspec.reference_class)
    inst.path = CIMInstanceName(spec.name, namespace=INTEROP)
    return inst


# -- the state ----------------------------------------------------------------------------

def snapshot(settings: ServiceSettings, store: Store) -> dict:
    """The state to save: the service settings and the store's records (lock held)."""
    return {"format": _STATE_FORMAT, "version": _STATE_VERSION,
            "service": settings.to_json(),
            "filters": [{"owner": f.owner, "instance": encode_instance(f.inst)}
                        for f in store.filter_recs.values()],
            "destinations": [{"owner": d.owner, "instance": encode_instance(d.inst)}
                             for d in store.dest_recs.values()],
            "subscriptions": [{"owner": s.owner, "started": s.started,
                               "instance": encode_instance(persistent_sub(s))}
                              for s in store.subs]}


def settings_from(data: dict, path: str) -> Optional[ServiceSettings]:
    """The service settings saved in `data`, or None (logged) if they are bad."""
    svc = data.get("service") or {}
    try:
        return ServiceSettings(
            retry_attempts=int(svc.get("DeliveryRetryAttempts", 3)),
            retry_interval=int(svc.get("DeliveryRetryInterval", 30)),
            removal_action=int(svc.get("SubscriptionRemovalAction", REMOVAL_IGNORE)),
            removal_interval=int(svc.get("SubscriptionRemovalTimeInterval", 86400)))
    except (TypeError, ValueError) as exc:
        LOG.error("%s: bad service settings (%s); defaults used", path, exc)
        return None


class StateFile:
    """The state file in `state_dir`."""

    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, STATE_FILE)

    def save(self, data: dict) -> None:
        """Write `data` atomically (raises OSError)."""
        path = self.path
        text = json.dumps(data, indent=1, sort_keys=True)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:
            dfd = os.open(self.state_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass

    def read(self) -> Optional[dict]:
        """The saved state, or None: no file, or one set aside (logged) as unreadable."""
        path = self.path
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._set_aside(f"cannot be read: {exc}")
            return None
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT or \
                data.get("version") != _STATE_VERSION:
            self._set_aside("is not an indication state file of this version")
            return None
        return data

    def _set_aside(self, why: str) -> None:
        path = self.path
        bad = f"{path}.bad-{int(time.time())}"
        try:
            os.replace(path, bad)
            LOG.error("%s %s; moved to %s, starting without subscriptions", path, why, bad)
        except OSError as exc:
            LOG.error("%s %s (and cannot be moved aside: %s); starting without "
                      "subscriptions", path, why, exc)
