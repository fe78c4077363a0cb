"""The embedded WBEM server: CIM-XML over HTTP and HTTPS (DSP0200, DSP0201).

Hosts the same providers as sfcb and Pegasus do, through the same
provider interface.  Run it with ``kvm-cimom`` or ``python -m kvm_providers.cimom``;
see docs/embedded-server.md.
"""
