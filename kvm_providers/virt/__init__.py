"""The libvirt layer: connections, the domain XML model and the CIM mapping tables.

Providers (and only they) use it; it knows libvirt and lxml, not CIM
servers.  See ``docs/libvirt-layer.md``.  Modules:

``connection``
    :class:`Host` (one supervised connection per configured host),
    :func:`configure` / :func:`manager` (the process-wide hosts),
    :class:`HostUnavailable` (CIM_ERR_FAILED naming the host).
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
``states``, ``capabilities``, ``profiles``
    state values, capability lists, registered profiles.
"""

from .connection import (ConnectionManager, DomainNotFound, Host, HostUnavailable, configure,
                         ensure_event_loop, is_configured, manager, shutdown)
from .domain import (DeviceContext, DomainRef, DomainXML, autostart, domain_state, domain_xml,
                     has_managed_save, host_facts, iter_domain_xml, list_domains, lookup_domain,
                     prefetch_xml)

__all__ = ["ConnectionManager", "DomainNotFound", "Host", "HostUnavailable", "configure",
           "ensure_event_loop", "is_configured", "manager", "shutdown", "DeviceContext",
           "DomainRef", "DomainXML", "autostart", "domain_state", "domain_xml",
           "has_managed_save", "host_facts", "iter_domain_xml", "list_domains", "lookup_domain",
           "prefetch_xml"]
