"""Activation of indication providers: their filter hooks as subscriptions come and go.

Indication provider modules are the ones registered with type "indication"
in the provider table.  The first active subscription of a filter activates
the filter with every indication provider registered for the filter's FROM
class (or a subclass) in its source namespaces: ``MI_authorizeFilter``,
then ``MI_activateFilter`` (``firstActivation`` when no other filter is
active for that class of that provider), then ``MI_enableIndications`` when
it is the provider module's first active filter.  The last active
subscription of a filter going away reverses that (``MI_deActivateFilter``
with ``lastActivation``, ``MI_disableIndications``).
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Optional

import pywbem
from pywbem import CIMError, CIMInstanceName

from ...provider import request_scope, to_cim_error
from ...schema import Schema
from .model import Filter

__all__ = ["Activation"]

LOG = logging.getLogger("kvm_providers.cimom.indications")


class Activation:
    """Which filters are active with which indication providers, and their hooks.

    `ops`: the server's Operations (provider table and provider
    environments), set when the service is attached; until then no provider
    serves any filter.  The caller serializes the calls (the indication
    service's mutex).
    """

    def __init__(self, schema: Schema):
        self.schema = schema
        self.ops: Any = None
        self.activated: dict[str, list[tuple[str, str, str]]] = {}  # filter -> targets
        self._class_count: collections.Counter = collections.Counter()
        self._module_count: collections.Counter = collections.Counter()

    def is_active(self, filt: Filter) -> bool:
        """True if `filt` is activated with its providers."""
        return filt.name in self.activated

    def sync(self, filt: Filter, wanted: bool, owner: Optional[str]) -> None:
        """Activate or deactivate `filt` as `wanted` (it has enabled subscriptions)."""
        if wanted and filt.name not in self.activated:
            self.activate(filt, owner)
        elif not wanted and filt.name in self.activated:
            self.deactivate(filt, owner)

    def _env(self, module: str, user: Optional[str]):
        return self.ops.env(module, user)

    def targets(self, filt: Filter) -> list[tuple[str, str, str]]:
        """(module, namespace, class) of the indication providers serving `filt`."""
        out: list[tuple[str, str, str]] = []
        if self.ops is None:
            return out
        for ns in filt.source_ns:
            if not self.schema.has_class(ns, filt.query.classname):
                continue
            for e in self.ops.table.subclasses(ns, filt.query.classname, "indication"):
                t = (e.module, e.namespace, e.classname)
                if t not in out:
                    out.append(t)
        return out

    def activate(self, filt: Filter, owner: Optional[str]) -> None:
        """Authorize and activate `filt` with its providers (call with the mutex held)."""
        targets = self.targets(filt)
        query = filt.query.text
        with request_scope():
            for module, ns, cn in targets:
                proxy = self.ops.table.proxy(module)
                try:
                    ok = proxy.MI_authorizeFilter(self._env(module, owner), query, cn,
                                                  CIMInstanceName(cn, namespace=ns),
                                                  owner or "")
                except Exception as exc:  # pylint: disable=broad-except
                    raise to_cim_error(exc, LOG, f"indication provider {module} "
                                                 "(AuthorizeFilter)") from None
                if ok is False:
                    raise CIMError(pywbem.CIM_ERR_ACCESS_DENIED,
                                   f"Indication provider {module} refuses filter "
                                   f"{filt.name!r} for class {cn} in namespace {ns}")
            done: list[tuple[str, str, str]] = []
            for t in targets:
                module, ns, cn = t
                try:
                    proxy = self.ops.table.proxy(module)
                    env = self._env(module, owner)
                    proxy.MI_activateFilter(env, query, cn, CIMInstanceName(cn, namespace=ns),
                                            self._class_count[t] == 0)
                    self._class_count[t] += 1
                    self._module_count[module] += 1
                    done.append(t)
                    if self._module_count[module] == 1:
                        proxy.MI_enableIndications(env)
                except Exception as exc:  # pylint: disable=broad-except
                    err = to_cim_error(exc, LOG, f"indication provider {module} "
                                                 "(ActivateFilter)")
                    self._deactivate_targets(filt, done, owner)
                    raise err from None
        self.activated[filt.name] = targets

    def deactivate(self, filt: Filter, owner: Optional[str]) -> None:
        targets = self.activated.pop(filt.name, None)
        if targets:
            with request_scope():
                self._deactivate_targets(filt, targets, owner)

    def _deactivate_targets(self, filt: Filter, targets: list, owner: Optional[str]) -> None:
        # Errors are logged, not raised: the subscription goes away regardless.
        for t in reversed(targets):
            module, ns, cn = t
            self._class_count[t] -= 1
            last = self._class_count[t] <= 0
            if last:
                del self._class_count[t]
            self._module_count[module] -= 1
            disable = self._module_count[module] <= 0
            if disable:
                del self._module_count[module]
            env = self._env(module, owner)
            try:
                self.ops.table.proxy(module).MI_deActivateFilter(
                    env, filt.query.text, cn, CIMInstanceName(cn, namespace=ns), last)
            except Exception as exc:  # pylint: disable=broad-except
                to_cim_error(exc, LOG, f"indication provider {module} (DeActivateFilter)")
            if disable:
                try:
                    self.ops.table.proxy(module).MI_disableIndications(env)
                except Exception as exc:  # pylint: disable=broad-except
                    to_cim_error(exc, LOG, f"indication provider {module} "
                                           "(DisableIndications)")
