"""What every provider module shares: base class, instance helpers, association plumbing."""

from .assoc import AssociationProvider, Role
from .base import (FAMILY_PREFIXES, DomainViewProvider, PerHostProvider, VirtProvider,
                   family_classnames,
                   get_domain_doc, providers_for, ref)
from .instances import ENABLED_AND_OK, fill, fill_from_table, put, wanted_in

__all__ = ["AssociationProvider", "Role", "FAMILY_PREFIXES", "VirtProvider", "PerHostProvider",
           "DomainViewProvider",
           "family_classnames", "get_domain_doc", "providers_for", "ref", "fill", "fill_from_table",
           "put", "wanted_in", "ENABLED_AND_OK"]
