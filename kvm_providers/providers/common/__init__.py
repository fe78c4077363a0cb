"""What every provider module shares: base class, instance helpers, association plumbing."""

# The providers read settings through the CIM model's device kinds (installing them).
from ...model import kinds as model_kinds  # noqa: F401
from .assoc import AssociationProvider, Role
from .base import (FAMILY_PREFIXES, DomainViewProvider, PerHostProvider, VirtProvider,
                   family_classnames,
                   get_domain_doc, providers_for, ref)
from .instances import ENABLED_AND_OK, fill, fill_from_table, put, wanted_in

__all__ = ["AssociationProvider", "Role", "FAMILY_PREFIXES", "VirtProvider", "PerHostProvider",
           "DomainViewProvider",
           "family_classnames", "get_domain_doc", "providers_for", "ref", "fill", "fill_from_table",
           "put", "wanted_in", "ENABLED_AND_OK"]
