"""The libvirt layer's errors: what went wrong, in the layer's own words (no CIM).

Every error the layer raises for its callers derives from :class:`VirtError`:
its text (``str(exc)``, also ``exc.message``) names the problem, and
``exc.reason`` says what kind of problem it is, machine-readable:

=====================  ===================================================================
``not-found``           :class:`NotFound`: the thing named does not exist (any more)
``no-domain``           :class:`DomainNotFound`: a domain vanished or never existed
``invalid-setting``     :class:`InvalidSetting`: a value a client gave cannot be used;
                        ``exc.where`` names the field (``"ResourceSettings[0]"``)
``conflict``            :class:`Conflict`: the change collides with what is there
                        (in use by another object, already exists)
``already-exists``      :class:`AlreadyExists`: the object to create exists
``host-unavailable``    :class:`HostUnavailable`: the libvirt host cannot be reached now
``not-supported``       :class:`NotSupported`: the host or driver cannot do it
``libvirt-failed``      :class:`LibvirtFailed`: a libvirt call failed for another reason
=====================  ===================================================================

The provider side translates them into CIM errors at one place, by reason
(:func:`kvm_providers.provider.env.cim_error`, used by the provider proxy and
every host): the layer itself never imports a CIM library.  The layer's
modules subclass these for their own vocabularies: ``nwfilter.FilterError``
(its ``kind`` mapped to a reason), ``poolconfig.InvalidSettings`` and
``InUse``, ``validate.BadName`` and ``PathNotAllowed``, ``limits.LimitError``,
``mapping.NotWritable`` (the last five also ValueErrors, reason
``invalid-setting``).

This module imports nothing of the package, so every module may raise them.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["VirtError", "NotFound", "DomainNotFound", "InvalidSetting", "Conflict",
           "AlreadyExists", "HostUnavailable", "NotSupported", "LibvirtFailed"]


class VirtError(Exception):
    """An error of the libvirt layer: a message naming the problem and a `reason`."""

    #: What kind of problem (machine-readable); subclasses set their own.
    reason: str = "failed"

    def __init__(self, message: str, reason: Optional[str] = None):
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        return self.message


class NotFound(VirtError):
    """The thing named does not exist (any more)."""

    reason = "not-found"


class DomainNotFound(NotFound):
    """A domain vanished (or never existed); providers answer NOT_FOUND or skip it."""

    reason = "no-domain"


class InvalidSetting(VirtError):
    """A client setting that cannot be applied; `where` names the field it came from."""

    reason = "invalid-setting"

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


class Conflict(VirtError):
    """The change collides with what is there (the object is in use, or exists)."""

    reason = "conflict"


class AlreadyExists(Conflict):
    """The object to create exists already."""

    reason = "already-exists"


class HostUnavailable(VirtError):
    """The libvirt host cannot be reached now; the message names the host and says why."""

    reason = "host-unavailable"

    def __init__(self, host: Any, why: str):
        super().__init__(f"libvirt host {host.label!r} ({host.uri}) is not reachable: {why}")
        self.host = host
        self.why = why


class NotSupported(VirtError):
    """The host or its driver cannot do what was asked."""

    reason = "not-supported"


class LibvirtFailed(VirtError):
    """A libvirt call failed (other than for a lost host or a missing domain)."""

    reason = "libvirt-failed"

    def __init__(self, host: Any, what: str, error: str, code: Optional[int] = None):
        super().__init__(f"libvirt host {host.label!r}: {what} failed: {error}")
        self.host = host
        self.what = what
        self.error = error
        #: libvirt's error code (``virErrorNumber``), if the error came from libvirt.
        self.code = code
