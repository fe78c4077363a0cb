"""The indication service: filters, destinations and subscriptions, and what they cause.

:class:`IndicationManager` is what the server and the builtin providers use.
It keeps the parts together and decides the order of every change: a client
request is checked against the :class:`.store.Store` (under the access
policy), activates or deactivates the filter with its indication providers
(:class:`.activation.Activation`), is saved (:mod:`.persistence`) or undone,
and only then becomes visible to delivery.  Indications that providers
deliver are matched here against the enabled subscriptions and queued to
their listener destinations (:class:`.delivery.Destination`), whose delivery
outcomes come back here to degrade, disable or remove subscriptions.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import threading
import time
import uuid
from typing import Any, Optional

import pywbem
from pywbem import CIMDateTime, CIMError, CIMInstance, CIMInstanceName

from ...schema import Schema
from ..names import BRAND, INTEROP
from .activation import Activation
from .delivery import Destination, typed_indication
from .model import (DEST_CLASSES, MAX_DESTINATIONS, MAX_FILTERS, MAX_SUBSCRIPTIONS,
                    POLICY_DISABLE, POLICY_IGNORE, POLICY_REMOVE, REMOVAL_DISABLE,
                    REMOVAL_REMOVE, STATE_DEGRADED, STATE_DISABLED, STATE_ENABLED, SUB_CLASS,
                    Filter, Named, ServiceSettings, Subscription, bad, check_sub_settings,
                    merged, modified_settings, now_dt, set_state, show, sub_names, value, why)
from .persistence import StateFile, decode_instance, settings_from, snapshot
from .policy import AccessPolicy, DestinationPolicy, DestinationURL
from .store import SYSTEM, Store

__all__ = ["IndicationManager"]

LOG = logging.getLogger("kvm_providers.cimom.indications")


class IndicationManager:
    """Filters, listener destinations and subscriptions; matching and delivery.

    `state_dir`: keep the configuration there (JSON, written atomically) and
    restore it at start; None keeps it in memory only.  `cafile`: CA
    certificates (PEM) that HTTPS listeners' certificates are checked
    against (default: the system's).  `queue_size`: indications queued per
    destination before the oldest are dropped.  `access`: who sees which
    objects (default: no authentication, one anonymous owner);
    `destinations`: where indications may be sent (default: loopback only).

    The client-facing methods take the requesting `user` (None: the anonymous
    user of a server without authentication) and act only on what
    :class:`AccessPolicy` lets that user see.
    """

    def __init__(self, schema: Schema, hostname: str, state_dir: Optional[str] = None,
                 cafile: Optional[str] = None, queue_size: int = 10000,
                 access: Optional[AccessPolicy] = None,
                 destinations: Optional[DestinationPolicy] = None):
        self.schema = schema
        self.hostname = hostname
        self.store = Store(schema, hostname, access or AccessPolicy(),
                           destinations or DestinationPolicy())
        self.activation = Activation(schema)
        self.state_dir = state_dir
        self.cafile = cafile
        self.queue_size = max(1, queue_size)
        self.settings = ServiceSettings()
        self.boot_id = uuid.uuid4().hex[:12]
        self._state = StateFile(state_dir) if state_dir else None
        self._mutex = threading.RLock()      # mutations and provider hooks, in order
        self._lock = self.store.lock         # the data, briefly
        self._active: tuple[Subscription, ...] = ()      # what deliver() reads, lock-free
        self._serial = itertools.count(1)
        self._msg_ids = itertools.count(1)
        self._ind_ids = itertools.count(1)
        self._ssl: Optional[ssl.SSLContext] = None
        self._stop = threading.Event()
        self._housekeeper: Optional[threading.Thread] = None
        self._loading = False
        self.received = 0
        self.matched = 0

    # Who may see what, and where indications may go: the store's (tests and the
    # server's configuration replace them).

    @property
    def access(self) -> AccessPolicy:
        return self.store.access

    @access.setter
    def access(self, policy: AccessPolicy) -> None:
        self.store.access = policy

    @property
    def destination_policy(self) -> DestinationPolicy:
        return self.store.destination_policy

    @destination_policy.setter
    def destination_policy(self, policy: DestinationPolicy) -> None:
        self.store.destination_policy = policy

    # -- what clients read (as the store lets `user` see it) -----------------------------

    def filters(self, user: Optional[str] = None) -> list[CIMInstance]:
        """The filters `user` may see."""
        return self.store.filters(user)

    def get_filter(self, path: CIMInstanceName,
                   user: Optional[str] = None) -> Optional[CIMInstance]:
        """The filter at `path`, or None (also if `user` may not see it)."""
        return self.store.get_filter(path, user)

    def destinations(self, classname: str, user: Optional[str] = None) -> list[CIMInstance]:
        """The destinations of class `classname` that `user` may see."""
        return self.store.destinations(classname, user)

    def get_destination(self, path: CIMInstanceName,
                        user: Optional[str] = None) -> Optional[CIMInstance]:
        """The destination at `path`, or None (also if `user` may not see it)."""
        return self.store.get_destination(path, user)

    def subscriptions(self, user: Optional[str] = None) -> list[CIMInstance]:
        """The subscriptions `user` may see."""
        return self.store.subscriptions(user)

    def get_subscription(self, path: CIMInstanceName,
                         user: Optional[str] = None) -> Optional[CIMInstance]:
        """The subscription at `path`, or None (also if `user` may not see it)."""
        return self.store.get_subscription(path, user)

    # -- life cycle --------------------------------------------------------------------

    def attach(self, ops) -> None:
        """Connect to the server's Operations (provider table) and load the saved state."""
        self.activation.ops = ops
        if self.state_dir:
            self._load()

    def start(self) -> None:
        """Activate the restored subscriptions with their providers; start housekeeping."""
        with self._mutex:
            for sub in list(self.store.subs):
                if sub.enabled and not self.activation.is_active(sub.filter):
                    try:
                        self.activation.activate(sub.filter, sub.owner)
                    except CIMError as exc:
                        LOG.error("restored %s: its indication providers failed to "
                                  "activate it: %s", sub.label(), exc.status_description)
            self._publish()
        self._housekeeper = threading.Thread(target=self._housekeeping, daemon=True,
                                             name="indication-housekeeping")
        self._housekeeper.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop delivering (what is still queued is dropped, and counted in the log)."""
        self._stop.set()
        with self._lock:
            dests = list(self.store.dest_recs.values())
        left = 0
        threads = []
        for d in dests:
            left += len(d.close())
            if d.thread is not None:
                threads.append(d.thread)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if left:
            LOG.warning("indication service stopped with %d undelivered indication(s)", left)

    def _housekeeping(self) -> None:
        while not self._stop.wait(1.0):
            now = time.time()
            expired = [s for s in self._active if s.expired(now)]
            for sub in expired:
                LOG.info("%s expired (SubscriptionDuration %s s): removed", sub.label(),
                         sub.duration)
                try:
                    self._remove_subscription(sub)
                except CIMError as exc:
                    LOG.error("removing expired %s failed: %s", sub.label(),
                              exc.status_description)

    # -- helpers --------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context HTTPS listeners' certificates are checked with."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.cafile)
        return self._ssl

    def next_message_id(self) -> str:
        """A new CIM-XML message id for an export request."""
        return str(next(self._msg_ids))

    def _publish(self) -> None:
        """Refresh the lock-free snapshot deliver() reads (call with the lock held)."""
        with self._lock:
            self._active = tuple(s for s in self.store.subs if s.enabled)

    def is_current(self, sub: Subscription) -> bool:
        """True while `sub` exists and is enabled (delivery threads check it)."""
        return sub in self._active

    # -- provider activation -------------------------------------------------------------

    def _sync_activation(self, filt: Filter, owner: Optional[str]) -> None:
        """Activate or deactivate `filt` to match its enabled subscriptions (mutex held)."""
        wanted = any(s.enabled for s in self.store.subs if s.filter is filt)
        self.activation.sync(filt, wanted, owner)

    # -- filters --------------------------------------------------------------------------

    def create_filter(self, inst: CIMInstance, owner: Optional[str]) -> CIMInstance:
        """CreateInstance of CIM_IndicationFilter."""
        inst = inst.copy()
        with self._mutex:
            filt = self.store.build_filter(inst, owner)
            with self._lock:
                if filt.name in self.store.filter_recs:
                    raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS,
                                   f"An indication filter named {filt.name!r} already exists")
                if len(self.store.filter_recs) >= MAX_FILTERS:
                    raise CIMError(pywbem.CIM_ERR_FAILED,
                                   f"Too many indication filters (at most {MAX_FILTERS})")
                self.store.filter_recs[filt.name] = filt
                self._save_or_undo(lambda: self.store.filter_recs.pop(filt.name, None))
        LOG.info("indication filter %r created: %s (%s) on %s", filt.name, filt.query.text,
                 inst["QueryLanguage"], ", ".join(filt.source_ns))
        return filt.inst.copy()

    def modify_filter(self, inst: CIMInstance, owner: Optional[str]) -> None:
        """ModifyInstance of CIM_IndicationFilter (the query only while unsubscribed)."""
        with self._mutex:
            old = self.store.find_filter(inst.path, user=owner)
            new = self.store.build_filter(merged(old, inst), old.owner)
            changed = [p for p in ("Query", "QueryLanguage", "SourceNamespaces",
                                   "SourceNamespace", "IndividualSubscriptionSupported")
                       if value(new.inst, p) != value(old.inst, p)]
            users = [s for s in self.store.subs if s.filter is old]
            if changed and users:
                raise CIMError(pywbem.CIM_ERR_FAILED,
                               f"Indication filter {old.name!r} is used by "
                               f"{sub_names(users)}; {', '.join(changed)} cannot change while "
                               "it is subscribed to")
            with self._lock:
                self.store.filter_recs[old.name] = new
                for s in users:
                    s.filter = new
                self._save_or_undo(lambda: self._undo_filter(old, new, users))

    def _undo_filter(self, old: Filter, new: Filter, users: list) -> None:
        self.store.filter_recs[old.name] = old
        for s in users:
            s.filter = old

    def delete_filter(self, path: CIMInstanceName, user: Optional[str] = None) -> None:
        """DeleteInstance of CIM_IndicationFilter; CIM_ERR_FAILED while subscribed to."""
        with self._mutex:
            filt = self.store.find_filter(path, user=user)
            self._delete_unused(self.store.filter_recs, filt, "Indication filter")
        LOG.info("indication filter %r deleted", filt.name)

    def _delete_unused(self, table: dict, rec: Named, label: str) -> None:
        """Remove `rec` from `table` and save; CIM_ERR_FAILED while subscribed to (mutex
        held)."""
        users = self.store.users_of(rec)
        if users:
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"{label} {rec.name!r} cannot be deleted: it is used by "
                           f"{sub_names(users)}")
        with self._lock:
            del table[rec.name]
            self._save_or_undo(lambda: table.__setitem__(rec.name, rec))

    # -- destinations -------------------------------------------------------------------

    def create_destination(self, inst: CIMInstance, owner: Optional[str]) -> CIMInstance:
        """CreateInstance of CIM_ListenerDestinationCIMXML / CIM_IndicationHandlerCIMXML."""
        inst = inst.copy()
        classname = next(c for c in DEST_CLASSES if c.lower() == inst.classname.lower())
        with self._mutex:
            inst, url = self.store.build_destination(inst, classname, owner)
            with self._lock:
                if inst["Name"] in self.store.dest_recs:
                    raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS,
                                   f"A listener destination named {inst['Name']!r} already "
                                   "exists")
                if len(self.store.dest_recs) >= MAX_DESTINATIONS:
                    raise CIMError(pywbem.CIM_ERR_FAILED, f"Too many listener destinations "
                                                          f"(at most {MAX_DESTINATIONS})")
                dest = Destination(self, inst, url, owner, next(self._serial))
                self.store.dest_recs[dest.name] = dest
                self._save_or_undo(lambda: self.store.dest_recs.pop(dest.name, None))
        LOG.info("listener destination %r created: %s", dest.name, url)
        return dest.inst.copy()

    def modify_destination(self, inst: CIMInstance, owner: Optional[str]) -> None:
        """ModifyInstance of a listener destination (Destination, PersistenceType, ...)."""
        with self._mutex:
            dest = self.store.find_dest(inst.path, user=owner)
            new = merged(dest, inst)
            # The address is checked when it changes (an unchanged one was checked
            # before, and is checked again at every connection).
            new, url = self.store.build_destination(
                new, dest.path.classname, dest.owner,
                check_address=value(new, "Destination") != value(dest.inst, "Destination"))
            with self._lock:
                old_inst, old_url = dest.inst, dest.url
                dest.inst, dest.url = new, url
                self._save_or_undo(lambda: _restore_dest(dest, old_inst, old_url))
            if url != old_url:
                LOG.info("listener destination %r now points to %s", dest.name, url)

    def delete_destination(self, path: CIMInstanceName, user: Optional[str] = None) -> None:
        """DeleteInstance of a listener destination; CIM_ERR_FAILED while subscribed to."""
        with self._mutex:
            dest = self.store.find_dest(path, user=user)
            self._delete_unused(self.store.dest_recs, dest, "Listener destination")
            dest.close()
        LOG.info("listener destination %r deleted", dest.name)

    # -- subscriptions ----------------------------------------------------------------

    def create_subscription(self, inst: CIMInstance, owner: Optional[str],
                            started: Optional[float] = None, activate: bool = True
                            ) -> CIMInstance:
        """CreateInstance of CIM_IndicationSubscription: check, activate, keep.

        The filter and the destination must be ones `owner` may see (their own,
        or any for an administrator): a user cannot have indications of another
        user's filter sent anywhere, nor send theirs to another user's listener.
        """
        inst = inst.copy()
        # Restoring the saved state: the owners were checked when it was created.
        who: Any = SYSTEM if self._loading else owner
        with self._mutex:
            fref, href = value(inst, "Filter"), value(inst, "Handler")
            if fref is None:
                raise bad("Subscription: Filter (the indication filter reference) is "
                          "required")
            if href is None:
                raise bad("Subscription: Handler (the listener destination reference) is "
                          "required")
            filt = self.store.find_filter(fref, "Subscription: ", who)
            dest = self.store.find_dest(href, "Subscription: ", who)
            if value(filt.inst, "IndividualSubscriptionSupported") is False:
                raise bad(f"Subscription: indication filter {filt.name!r} does not allow "
                          "individual subscriptions (IndividualSubscriptionSupported is "
                          "false)")
            with self._lock:
                for s in self.store.subs:
                    if s.filter is filt and s.dest is dest:
                        raise CIMError(pywbem.CIM_ERR_ALREADY_EXISTS,
                                       f"A subscription of filter {filt.name!r} to "
                                       f"destination {dest.name!r} already exists")
                if len(self.store.subs) >= MAX_SUBSCRIPTIONS:
                    raise CIMError(pywbem.CIM_ERR_FAILED, f"Too many subscriptions (at "
                                                          f"most {MAX_SUBSCRIPTIONS})")
            check_sub_settings(inst, creating=True)
            now = time.time()
            started = started or now
            inst["SubscriptionState"] = pywbem.Uint16(value(inst, "SubscriptionState",
                                                            STATE_ENABLED))
            inst["OnFatalErrorPolicy"] = pywbem.Uint16(value(inst, "OnFatalErrorPolicy",
                                                             POLICY_IGNORE))
            inst["RepeatNotificationPolicy"] = pywbem.Uint16(2)      # None
            inst["SubscriptionStartTime"] = CIMDateTime.fromtimestamp(started)
            if value(inst, "TimeOfLastStateChange") is None:
                inst["TimeOfLastStateChange"] = CIMDateTime.fromtimestamp(started)
            duration = value(inst, "SubscriptionDuration")
            # Canonical references (interop namespace, declared key spelling): the
            # association operations compare them with the paths clients give.
            inst["Filter"] = filt.path.copy()
            inst["Handler"] = dest.path.copy()
            inst.path = CIMInstanceName(SUB_CLASS, namespace=INTEROP, keybindings=[
                ("Filter", filt.path.copy()), ("Handler", dest.path.copy())])
            sub = Subscription(inst, filt, dest, owner, started,
                               int(duration) if duration else None)
            with self._lock:
                self.store.subs.append(sub)
            try:
                if activate and sub.enabled:
                    self._sync_activation(filt, owner)
            except CIMError:
                with self._lock:
                    self.store.subs.remove(sub)
                raise
            with self._lock:
                self._save_or_undo(lambda: self._undo_new_sub(sub))
                self._publish()
        LOG.info("%s created%s", sub.label(), "" if sub.enabled else " (disabled)")
        return self.store.sub_instance(sub)

    def _undo_new_sub(self, sub: Subscription) -> None:
        self.store.subs.remove(sub)
        self._publish()
        self._sync_activation(sub.filter, sub.owner)

    def modify_subscription(self, inst: CIMInstance, owner: Optional[str]) -> None:
        """ModifyInstance of a subscription: SubscriptionState, SubscriptionDuration, ..."""
        with self._mutex:
            sub = self.store.lookup_sub(inst.path, owner)
            if sub is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"Subscription {show(inst.path)} does not exist")
            check_sub_settings(inst, creating=False, current=sub.inst)
            old_inst, old_duration, old_started = sub.inst, sub.duration, sub.started
            new = sub.inst.copy()
            for name in ("SubscriptionState", "SubscriptionDuration", "SubscriptionInfo",
                         "OnFatalErrorPolicy", "OtherOnFatalErrorPolicy",
                         "FailureTriggerTimeInterval", "OtherSubscriptionState"):
                if name in inst.properties:
                    new.properties[name] = inst.properties[name].copy()
            if new.properties.get("SubscriptionState") is not None and \
                    value(new, "SubscriptionState") is None:
                new["SubscriptionState"] = pywbem.Uint16(STATE_ENABLED)
            was_enabled = sub.enabled
            if value(new, "SubscriptionState") == STATE_ENABLED and \
                    value(old_inst, "SubscriptionState") == STATE_DEGRADED:
                new["SubscriptionState"] = pywbem.Uint16(STATE_DEGRADED)  # still failing
            with self._lock:
                sub.inst = new
                if "SubscriptionDuration" in inst.properties:
                    d = value(new, "SubscriptionDuration")
                    sub.duration = int(d) if d else None
                    sub.started = time.time()      # the duration counts from now
                if sub.enabled != was_enabled:
                    new["TimeOfLastStateChange"] = now_dt()
            try:
                self._sync_activation(sub.filter, owner)
            except CIMError:
                with self._lock:
                    sub.inst, sub.duration, sub.started = old_inst, old_duration, old_started
                raise
            with self._lock:
                self._save_or_undo(lambda: self._undo_modify(sub, old_inst, old_duration,
                                                             old_started))
                self._publish()

    def _undo_modify(self, sub, old_inst, old_duration, old_started) -> None:
        sub.inst, sub.duration, sub.started = old_inst, old_duration, old_started
        self._publish()
        self._sync_activation(sub.filter, sub.owner)

    def delete_subscription(self, path: CIMInstanceName, user: Optional[str] = None) -> None:
        """DeleteInstance of a subscription: deactivates its filter if it was the last."""
        with self._mutex:
            sub = self.store.lookup_sub(path, user)
            if sub is None:
                raise CIMError(pywbem.CIM_ERR_NOT_FOUND,
                               f"Subscription {show(path)} does not exist")
            self._remove_subscription(sub)
        LOG.info("%s deleted", sub.label())

    def _remove_subscription(self, sub: Subscription) -> None:
        with self._mutex:
            with self._lock:
                if sub not in self.store.subs:
                    return
                self.store.subs.remove(sub)
                self._publish()
            self._sync_activation(sub.filter, sub.owner)
            # Unsaved, the subscription is gone from memory but comes back after a restart.
            self._save_or_log()

    # -- delivery outcomes (called by delivery threads) -------------------------------

    def delivery_failed(self, dest: Destination, sub: Subscription, now: float) -> None:
        """An indication could not be delivered: degrade, and apply the failure policies."""
        with self._mutex:
            with self._lock:
                users = [s for s in self.store.subs if s.dest is dest]
                for s in users:
                    if s.state == STATE_ENABLED:
                        set_state(s, STATE_DEGRADED)
            failing_for = now - (dest.failing_since or now)
            victims: list[tuple[Subscription, int, str]] = []
            svc = self.settings
            if svc.removal_action in (REMOVAL_REMOVE, REMOVAL_DISABLE) and \
                    failing_for >= svc.removal_interval:
                reason = (f"SubscriptionRemovalAction after {int(failing_for)} s of failed "
                          "deliveries")
                victims += [(s, POLICY_REMOVE if svc.removal_action == REMOVAL_REMOVE
                             else POLICY_DISABLE, reason) for s in users]
            policy = int(value(sub.inst, "OnFatalErrorPolicy", POLICY_IGNORE))
            trigger = int(value(sub.inst, "FailureTriggerTimeInterval", 0) or 0)
            if policy in (POLICY_DISABLE, POLICY_REMOVE) and failing_for >= trigger and \
                    not any(v[0] is sub for v in victims):
                victims.append((sub, policy, "its OnFatalErrorPolicy"))
            for s, action, reason in victims:
                if s not in self.store.subs:
                    continue
                if action == POLICY_REMOVE:
                    LOG.warning("%s removed (%s)", s.label(), reason)
                    self._remove_subscription(s)
                elif s.enabled:
                    LOG.warning("%s disabled (%s)", s.label(), reason)
                    with self._lock:
                        set_state(s, STATE_DISABLED)
                        self._publish()
                    self._sync_activation(s.filter, s.owner)
                    self._save_or_log()

    def delivery_recovered(self, dest: Destination) -> None:
        """`dest` is reachable again: its degraded subscriptions are enabled again."""
        with self._lock:
            for s in self.store.subs:
                if s.dest is dest and s.state == STATE_DEGRADED:
                    set_state(s, STATE_ENABLED)

    # -- the service ------------------------------------------------------------------

    def modify_service(self, inst: CIMInstance) -> None:
        """ModifyInstance of CIM_IndicationService: the delivery and removal settings."""
        with self._mutex:
            spec = self.schema.spec(INTEROP, inst.classname) \
                if self.schema.has_class(INTEROP, inst.classname) else None
            new = modified_settings(self.settings, inst, spec)
            with self._lock:
                old, self.settings = self.settings, new
                self._save_or_undo(lambda: setattr(self, "settings", old))
        LOG.info("indication service settings: %s", new)

    # -- delivery (providers' DeliverIndication) -------------------------------------

    def deliver(self, namespace: str, indication: CIMInstance) -> None:
        """Match an indication against the active subscriptions and queue it for export.

        Called in the provider's thread; returns at once (delivery runs in
        the destinations' threads).  Errors in the indication itself (unknown
        namespace or class, not an indication, ill-typed properties) are
        raised to the provider as CIM errors.
        """
        ns, spec, inst = typed_indication(
            self.schema, namespace, indication,
            lambda: f"{BRAND}:{self.boot_id}:{next(self._ind_ids)}")
        has_filter_name = "indicationfiltername" in spec.props
        has_seq = "sequencecontext" in spec.props and "sequencenumber" in spec.props
        self.received += 1
        now = time.time()
        for sub in self._active:
            filt = sub.filter
            if ns not in filt.source_ns or sub.expired(now):
                continue
            if not spec.is_a(filt.query.classname):
                continue
            try:
                if not filt.query.matches(inst):
                    continue
            except Exception as exc:  # pylint: disable=broad-except
                LOG.warning("filter %r: evaluating its query on %s failed: %s", filt.name,
                            spec.name, exc)
                continue
            out = inst.copy()
            if has_filter_name and value(out, "IndicationFilterName") is None:
                out["IndicationFilterName"] = filt.name
            filt.query.project(out)
            self.matched += 1
            # Sequence numbers are added after the projection: they number deliveries.
            sub.dest.enqueue(out, sub, has_seq)

    # -- statistics --------------------------------------------------------------------

    def stats(self) -> dict:
        """Counters (for tests, benchmarks and the log)."""
        with self._lock:
            dests = {d.name: {"url": str(d.url), "delivered": d.delivered, "failed": d.failed,
                              "overflowed": d.overflowed, "queued": d.pending(),
                              "last_error": d.last_error}
                     for d in self.store.dest_recs.values()}
            return {"received": self.received, "matched": self.matched,
                    "filters": len(self.store.filter_recs),
                    "subscriptions": len(self.store.subs),
                    "active": len(self._active), "destinations": dests}

    # -- persistence -------------------------------------------------------------------

    @property
    def state_path(self) -> Optional[str]:
        """The state file (None: the state is kept in memory only)."""
        return self._state.path if self._state else None

    def _save_or_undo(self, undo) -> None:
        """Save the state (lock held); on failure undo the change and fail the request."""
        try:
            self._save()
        except OSError as exc:
            undo()
            raise CIMError(pywbem.CIM_ERR_FAILED,
                           f"Cannot save the indication subscriptions to {self.state_path}: "
                           f"{exc.strerror or exc}") from None

    def _save_or_log(self) -> None:
        """Save the state after a change that stands even if it cannot be saved."""
        with self._lock:
            try:
                self._save()
            except OSError as exc:
                LOG.error("cannot save the indication state: %s", exc)

    def _save(self) -> None:
        if self._state is None or self._loading:
            return
        self._state.save(snapshot(self.settings, self.store))

    def _load(self) -> None:
        if self._state is None:
            return
        data = self._state.read()
        if data is None:
            return
        path = self._state.path
        self.settings = settings_from(data, path) or self.settings
        restored = [0, 0, 0]
        self._loading = True
        try:
            self._restore(data, path, restored)
        finally:
            self._loading = False
        LOG.info("restored %d indication filter(s), %d listener destination(s) and %d "
                 "subscription(s) from %s", *restored, path)

    def _restore(self, data: dict, path: str, restored: list[int]) -> None:
        for entry in data.get("filters") or []:
            try:
                inst = decode_instance(self.schema, entry["instance"])
                filt = self.store.build_filter(inst, entry.get("owner"))
                self.store.filter_recs[filt.name] = filt
                restored[0] += 1
            except (CIMError, KeyError, TypeError, ValueError) as exc:
                LOG.error("%s: indication filter not restored: %s", path, why(exc))
        for entry in data.get("destinations") or []:
            try:
                inst = decode_instance(self.schema, entry["instance"])
                classname = next(c for c in DEST_CLASSES if c.lower() == inst.classname.lower())
                # Not resolved now (the network may not be up at boot): checked at
                # every connection instead, so a destination is never lost to DNS.
                inst, url = self.store.build_destination(inst, classname, entry.get("owner"),
                                                         check_address=False)
                dest = Destination(self, inst, url, entry.get("owner"), next(self._serial))
                self.store.dest_recs[dest.name] = dest
                restored[1] += 1
            except (CIMError, KeyError, TypeError, ValueError, StopIteration) as exc:
                LOG.error("%s: listener destination not restored: %s", path, why(exc))
        for entry in data.get("subscriptions") or []:
            try:
                inst = decode_instance(self.schema, entry["instance"])
                self.create_subscription(inst, entry.get("owner"),
                                         started=float(entry.get("started") or time.time()),
                                         activate=False)
                restored[2] += 1
            except (CIMError, KeyError, TypeError, ValueError) as exc:
                LOG.error("%s: subscription not restored: %s", path, why(exc))


def _restore_dest(dest: Destination, inst: CIMInstance, url: DestinationURL) -> None:
    dest.inst, dest.url = inst, url
