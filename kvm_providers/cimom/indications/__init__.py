"""The embedded server's indication service (DMTF DSP1054 Indications, DSP0200 export).

The parts, each a module of this package:

``manager``
    :class:`IndicationManager`, what the server and the builtin providers
    use: the order of every change (check, activate, save or undo), the
    matching of the indications providers deliver against the enabled
    subscriptions, the delivery outcomes' effect on subscriptions
    (OnFatalErrorPolicy, SubscriptionRemovalAction), expiry.
``store``
    the filters, listener destinations and subscriptions of the interop
    namespace: building and checking them from client instances, finding
    and listing them as the access policy lets each user see them.
``model``
    the records, value maps, limits and service settings the parts share.
``policy``
    :class:`AccessPolicy` (every object belongs to its creator; only they
    and the administrators see it) and :class:`DestinationPolicy` (the
    networks and hosts indications may be sent to) with the listener URL
    parser.
``activation``
    the indication providers' filter hooks (``MI_authorizeFilter``,
    ``MI_activateFilter``, ``MI_enableIndications`` and their reverse) as
    subscriptions come and go.
``delivery``
    export to CIM-XML listeners (``ExportIndication`` over HTTP or HTTPS),
    asynchronously: one bounded queue and one delivery thread per
    destination, in order, with the retries the CIM_IndicationService asks
    for; connections only to addresses the destination policy allows.
``persistence``
    the state file in the state directory (subscriptions survive a restart).
``providers``
    the builtin providers clients manage it all with: CIM_IndicationFilter,
    CIM_ListenerDestinationCIMXML, CIM_IndicationHandlerCIMXML,
    CIM_IndicationSubscription, CIM_IndicationService,
    CIM_IndicationServiceCapabilities and CIM_ElementCapabilities.

This package re-exports the names the server and the tests use.  See
docs/indications.md for the behaviour seen by clients.
"""

from ..names import INTEROP, service_path
from .delivery import Destination, DeliveryError, check_export_response, export_request
from .manager import IndicationManager
from .model import (STATE_DEGRADED, STATE_DISABLED, STATE_ENABLED, ServiceSettings,
                    service_properties)
from .persistence import STATE_FILE
from .policy import (AccessPolicy, DestinationPolicy, DestinationRefused, DestinationURL,
                     parse_destination)
from .providers import BUILTIN_CLASSES, configure, get_providers, iter_builtin

__all__ = ["IndicationManager", "ServiceSettings", "DestinationURL", "parse_destination",
           "export_request", "check_export_response", "DeliveryError", "Destination",
           "BUILTIN_CLASSES", "configure", "get_providers", "iter_builtin", "STATE_FILE",
           "AccessPolicy", "DestinationPolicy", "DestinationRefused", "INTEROP",
           "STATE_ENABLED", "STATE_DEGRADED", "STATE_DISABLED", "service_path",
           "service_properties"]
