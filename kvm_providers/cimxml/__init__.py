"""CIM-XML (DSP0201): reading requests and objects, writing responses, embedded instances.

Shared by the embedded server and by providers (embedded instance decoding).
"""

from .embedded import EmbeddedInstanceError, decode_embedded_instance, parse_mof_instance
from .reader import CIMXMLError, Request, parse_request

__all__ = ["CIMXMLError", "Request", "parse_request", "decode_embedded_instance",
           "parse_mof_instance", "EmbeddedInstanceError"]
