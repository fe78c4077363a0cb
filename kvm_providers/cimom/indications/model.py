"""The indication service's records and values: filters, subscriptions, service settings.

What every part of the service shares: the class names and value maps of
DSP1054, the limits, the in-memory records of filters and subscriptions
(listener destinations are :class:`.delivery.Destination`, which carry their
delivery queue), the checks of a subscription's settable properties, and
small helpers for values and messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import pywbem
from pywbem import CIMDateTime, CIMError, CIMInstance, CIMInstanceName

from ...schema import Schema
from ..names import NAMESPACE_ALIASES, SERVICE_CLASS, SYSTEM_CCN
from ..wql import WQLQuery

if TYPE_CHECKING:                       # a record of .delivery, which imports this module
    from .delivery import Destination

__all__ = ["FILTER_CLASS", "DEST_CLASSES", "SUB_CLASS", "SERVICE_CLASS", "CAPS_CLASS",
           "SYSTEM_CCN", "ServiceSettings", "Named", "Filter", "Subscription",
           "service_properties"]

FILTER_CLASS = "CIM_IndicationFilter"
DEST_CLASSES = ("CIM_ListenerDestinationCIMXML", "CIM_IndicationHandlerCIMXML")
SUB_CLASS = "CIM_IndicationSubscription"
CAPS_CLASS = "CIM_IndicationServiceCapabilities"

# CIM_AbstractIndicationSubscription.SubscriptionState
STATE_ENABLED, STATE_DEGRADED, STATE_DISABLED = 2, 3, 4
# CIM_AbstractIndicationSubscription.OnFatalErrorPolicy
POLICY_OTHER, POLICY_IGNORE, POLICY_DISABLE, POLICY_REMOVE = 1, 2, 3, 4
# CIM_IndicationService.SubscriptionRemovalAction
REMOVAL_REMOVE, REMOVAL_DISABLE, REMOVAL_IGNORE = 2, 3, 4
# CIM_ListenerDestination.PersistenceType
PERSIST_OTHER, PERSIST_PERMANENT, PERSIST_TRANSIENT = 1, 2, 3

#: Limits published in CIM_IndicationServiceCapabilities and enforced.
MAX_DESTINATIONS = 256
MAX_SUBSCRIPTIONS = 1024
MAX_FILTERS = 1024


# -- values and messages ---------------------------------------------------------------

def bad(msg: str) -> CIMError:
    """CIM_ERR_INVALID_PARAMETER with `msg`."""
    return CIMError(pywbem.CIM_ERR_INVALID_PARAMETER, msg)


def now_dt() -> CIMDateTime:
    """The current time as a CIM datetime."""
    return CIMDateTime.now()


def canonical_ns(schema: Schema, namespace: str) -> Optional[str]:
    """The schema's spelling of `namespace` (aliases resolved), or None."""
    ns = (namespace or "").strip().strip("/")
    ns = NAMESPACE_ALIASES.get(ns.lower(), ns)
    for known in schema.namespaces:
        if known.lower() == ns.lower():
            return known
    return None


def value(inst: CIMInstance, name: str, default: Any = None) -> Any:
    """The value of property `name` of `inst`, or `default` if it is missing or NULL."""
    prop = inst.properties.get(name)
    return default if prop is None or prop.value is None else prop.value


def txt(v: Any) -> str:
    """A value for a message: pywbem's numbers without their repr noise."""
    return "NULL" if v is None else repr(v) if isinstance(v, str) else str(v)


def same(a: Any, b: Any) -> bool:
    """True if two property values are equal (as values or as text)."""
    if a is None or b is None:
        return a is b
    try:
        return a == b or str(a) == str(b)
    except Exception:  # pylint: disable=broad-except
        return False


def show(path: Any) -> str:
    """An instance path for a message."""
    if isinstance(path, CIMInstanceName):
        try:
            return path.to_wbem_uri()
        except Exception:  # pylint: disable=broad-except
            return str(path)
    return repr(path)


def why(exc: BaseException) -> str:
    """What went wrong, for the log."""
    return exc.status_description if isinstance(exc, CIMError) else f"{type(exc).__name__}: " \
                                                                      f"{exc}"


# -- the service's settings ---------------------------------------------------------------

@dataclass
class ServiceSettings:
    """The writable properties of CIM_IndicationService."""

    retry_attempts: int = 3           # DeliveryRetryAttempts
    retry_interval: int = 30          # DeliveryRetryInterval (seconds)
    removal_action: int = REMOVAL_IGNORE          # SubscriptionRemovalAction
    removal_interval: int = 86400     # SubscriptionRemovalTimeInterval (seconds)

    def to_json(self) -> dict:
        """The settings as saved in the state file."""
        return {"DeliveryRetryAttempts": self.retry_attempts,
                "DeliveryRetryInterval": self.retry_interval,
                "SubscriptionRemovalAction": self.removal_action,
                "SubscriptionRemovalTimeInterval": self.removal_interval}


def service_properties(s: ServiceSettings) -> dict[str, tuple[str, Any]]:
    """{lower-case name: (name, value)} of the CIM_IndicationService instance."""
    props = [
        ("ElementName", "Indication Service"),
        ("Caption", "kvm_providers indication service"),
        ("Description", "Delivers indications to CIM-XML listeners (DSP1054)"),
        ("FilterCreationEnabled", True),
        ("DeliveryRetryAttempts", pywbem.Uint16(s.retry_attempts)),
        ("DeliveryRetryInterval", pywbem.Uint32(s.retry_interval)),
        ("SubscriptionRemovalAction", pywbem.Uint16(s.removal_action)),
        ("SubscriptionRemovalTimeInterval", pywbem.Uint32(s.removal_interval)),
        ("EnabledState", pywbem.Uint16(2)),
        ("RequestedState", pywbem.Uint16(12)),
        ("EnabledDefault", pywbem.Uint16(2)),
        ("OperationalStatus", [pywbem.Uint16(2)]),
        ("HealthState", pywbem.Uint16(5)),
        ("Started", True),
    ]
    return {n.lower(): (n, v) for n, v in props}


def modified_settings(settings: ServiceSettings, inst: CIMInstance,
                      spec: Any = None) -> ServiceSettings:
    """The settings after ModifyInstance of CIM_IndicationService with `inst`.

    Only the delivery and removal settings can change; the other properties
    are accepted unchanged (a client sends back the instance it got with one
    value changed), NULL, or at their class default (`spec`: the class).
    """
    new = ServiceSettings(**vars(settings))
    current = service_properties(settings)
    for name, prop in inst.properties.items():
        v = prop.value
        low = name.lower()
        if low == "deliveryretryattempts":
            if v is None or not 0 <= int(v) <= 1000:
                raise bad(f"DeliveryRetryAttempts {txt(v)} is not in 0..1000")
            new.retry_attempts = int(v)
        elif low == "deliveryretryinterval":
            if v is None or not 0 <= int(v) <= 86400:
                raise bad(f"DeliveryRetryInterval {txt(v)} is not in 0..86400 seconds")
            new.retry_interval = int(v)
        elif low == "subscriptionremovalaction":
            if v is None or int(v) not in (REMOVAL_REMOVE, REMOVAL_DISABLE,
                                           REMOVAL_IGNORE):
                raise bad(f"SubscriptionRemovalAction {txt(v)} is not 2 (Remove), "
                          "3 (Disable) or 4 (Ignore)")
            new.removal_action = int(v)
        elif low == "subscriptionremovaltimeinterval":
            if v is None:
                raise bad("SubscriptionRemovalTimeInterval cannot be NULL")
            new.removal_interval = int(v)
        elif low not in current and (v is None or (
                spec is not None and low in spec.props
                and same(spec.props[low].default, v))):
            # Read tolerantly: NULL, or the class default the instance was
            # completed with, is "not given".
            continue
        elif not same(current[low][1] if low in current else None, v):
            # Unchanged values of the other properties are accepted, so that a
            # client can send back the instance it got with one value changed.
            raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                           f"CIM_IndicationService.{name} cannot be modified "
                           "(settable: DeliveryRetryAttempts, DeliveryRetryInterval, "
                           "SubscriptionRemovalAction, "
                           "SubscriptionRemovalTimeInterval)")
    return new


# -- records ----------------------------------------------------------------------------

class Named:
    """A record kept by its instance's Name (filters and destinations)."""

    inst: CIMInstance
    owner: Optional[str]

    @property
    def name(self) -> str:
        return self.inst["Name"]

    @property
    def path(self) -> CIMInstanceName:
        return self.inst.path


@dataclass(eq=False)
class Filter(Named):
    """An indication filter: its instance and parsed query."""

    inst: CIMInstance             # as clients see it (path in the interop namespace)
    query: WQLQuery
    source_ns: tuple[str, ...]    # canonical names
    owner: Optional[str]


@dataclass(eq=False)
class Subscription:
    """A subscription of a filter to a listener destination."""

    inst: CIMInstance
    filter: Filter
    dest: "Destination"
    owner: Optional[str]
    started: float                # time.time() of creation (SubscriptionStartTime)
    duration: Optional[int] = None

    @property
    def path(self) -> CIMInstanceName:
        return self.inst.path

    @property
    def state(self) -> int:
        return int(value(self.inst, "SubscriptionState", STATE_ENABLED))

    @property
    def enabled(self) -> bool:
        return self.state in (STATE_ENABLED, STATE_DEGRADED)

    def expired(self, now: float) -> bool:
        if not self.duration:
            return False
        return now >= self.started + self.duration

    def label(self) -> str:
        return f"subscription of filter {self.filter.name!r} to destination {self.dest.name!r}"


def sub_names(subs: list[Subscription]) -> str:
    """The subscriptions for a message."""
    return ", ".join(f"the subscription of filter {s.filter.name!r} to destination "
                     f"{s.dest.name!r}" for s in subs)


def merged(rec: Named, inst: CIMInstance) -> CIMInstance:
    """`rec`'s instance with the properties of `inst` (ModifyInstance), keys unchanged."""
    out = rec.inst.copy()
    for name, prop in inst.properties.items():
        out.properties[name] = prop.copy()
    for key in rec.path.keybindings:
        out[key] = rec.inst[key]
    return out


def set_state(sub: Subscription, state: int) -> None:
    """Set the SubscriptionState of `sub` (and the time of the change)."""
    inst = sub.inst.copy()
    inst["SubscriptionState"] = pywbem.Uint16(state)
    inst["TimeOfLastStateChange"] = now_dt()
    sub.inst = inst


def persistent_sub(sub: Subscription) -> CIMInstance:
    """The subscription as saved: a degraded state is a runtime fact, not a setting."""
    if sub.state != STATE_DEGRADED:
        return sub.inst
    inst = sub.inst.copy()
    inst["SubscriptionState"] = pywbem.Uint16(STATE_ENABLED)
    return inst


def check_sub_settings(inst: CIMInstance, creating: bool,
                       current: Optional[CIMInstance] = None) -> None:
    """Check the settable properties of a subscription (create or modify)."""
    state = value(inst, "SubscriptionState")
    if state is not None and int(state) not in (STATE_ENABLED, STATE_DISABLED) and \
            not (current is not None and int(state) == value(current, "SubscriptionState")):
        raise bad(f"SubscriptionState {state} cannot be requested (2 Enabled or "
                  "4 Disabled)")
    policy = value(inst, "OnFatalErrorPolicy")
    if policy is not None and int(policy) not in (POLICY_OTHER, POLICY_IGNORE, POLICY_DISABLE,
                                                  POLICY_REMOVE):
        raise bad(f"OnFatalErrorPolicy {policy} is not 1 (Other), 2 (Ignore), 3 (Disable) "
                  "or 4 (Remove)")
    repeat = value(inst, "RepeatNotificationPolicy")
    if creating and repeat is not None and int(repeat) not in (0, 2):
        raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                       f"RepeatNotificationPolicy {repeat} is not supported (2, None)")
    if not creating and current is not None:
        for name in ("RepeatNotificationPolicy", "RepeatNotificationInterval",
                     "RepeatNotificationGap", "RepeatNotificationCount",
                     "OtherRepeatNotificationPolicy"):
            if name in inst.properties and not same(value(inst, name),
                                                    value(current, name)):
                raise CIMError(pywbem.CIM_ERR_NOT_SUPPORTED,
                               f"CIM_IndicationSubscription.{name} cannot be modified")
