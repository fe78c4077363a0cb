"""The provider interface: the contract between hosts and provider modules.

This is cmpi-bindings' Python provider API (pywbem 0.7's ``cim_provider2``),
ported to Python 3 and pywbem 1.x and owned by this project.  See
``docs/provider-interface.md`` for the contract; in short:

* a provider module exposes ``get_providers(env)`` returning
  ``{class name: CIMProvider2 instance}`` and optional module hooks;
* a provider subclasses :class:`CIMProvider2` and implements
  ``get_instance``, ``enum_instances``, ``set_instance``, ``delete_instance``,
  ``references`` and ``cim_method_<name>``;
* a host loads modules with :class:`ProviderProxy` and calls its ``MI_*``
  methods, inside :func:`request_scope`.
"""

from .base import CIMProvider2, paths_equal
from .env import (CIMOMHandle, ProviderEnvironment, ProviderLogger, cim_error, current_scope,
                  request_scope, to_cim_error)
from .model import InstanceModel, fast_property, filter_instance, make_model, model_from_instance
from .proxy import ProviderProxy, load_provider_module
from .values import coerce, coerce_scalar

__all__ = [
    "CIMProvider2", "paths_equal", "CIMOMHandle", "ProviderEnvironment", "ProviderLogger",
    "request_scope", "current_scope", "to_cim_error", "cim_error", "InstanceModel", "make_model",
    "model_from_instance", "filter_instance", "fast_property", "ProviderProxy",
    "load_provider_module", "coerce", "coerce_scalar",
]
