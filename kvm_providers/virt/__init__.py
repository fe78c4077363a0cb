"""The libvirt layer: connections, the domain XML model and the CIM mapping tables.

Providers (and only they) use it; it knows libvirt and lxml, not CIM: it
imports no CIM library and nothing of the provider side, and raises its own
errors (``errors``), which the provider side translates into CIM errors at
one place (:func:`kvm_providers.provider.cim_error`).  See
``docs/libvirt-layer.md``.  Modules:

``errors``
    the layer's errors (:class:`~.errors.VirtError` and its kinds: not found,
    invalid setting, conflict, host unavailable, not supported, libvirt failed).
``scope``
    the request scope the layer memoizes in (the provider side opens it).
``connection``
    :class:`Host` (one supervised connection per configured host),
    :func:`configure` / :func:`manager` (the process-wide hosts),
    :class:`HostUnavailable` (naming the host).
``events``
    domain lifecycle events of the hosts as plain data
    (:func:`events.subscribe`), registered again after every reconnection.
``keys``
    instance keys and their parsers (libvirt-cim's with one host; host
    labels with several).
``domain``
    domains, states and parsed XML of a host, memoized per request.
``devices``
    which XML elements are which RASDs and logical devices, and their ids.
``mapping``
    the declarative tables between CIM properties and XML, read and write.
``states``, ``profiles``
    libvirt's domain states (their CIM values: providers/common/states.py),
    registered profiles.
"""

from .connection import (ConnectionManager, DomainNotFound, Host, HostUnavailable, configure,
                         ensure_event_loop, is_configured, manager, shutdown)
from .errors import (AlreadyExists, Conflict, InvalidSetting, LibvirtFailed, NotFound,
                     NotSupported, VirtError)
from .domain import (DeviceContext, DomainRef, DomainXML, autostart, domain_state, domain_xml,
                     has_managed_save, iter_domain_xml, list_domains, lookup_domain,
                     prefetch_xml)
from .hostfacts import host_facts

__all__ = ["ConnectionManager", "DomainNotFound", "Host", "HostUnavailable", "configure",
           "ensure_event_loop", "is_configured", "manager", "shutdown", "DeviceContext",
           "DomainRef", "DomainXML", "autostart", "domain_state", "domain_xml",
           "has_managed_save", "host_facts", "iter_domain_xml", "list_domains", "lookup_domain",
           "prefetch_xml", "VirtError", "NotFound", "InvalidSetting", "Conflict",
           "AlreadyExists", "NotSupported", "LibvirtFailed"]
