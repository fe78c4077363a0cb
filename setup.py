"""Packaging for kvm_providers: DMTF virtualization CIM providers over libvirt."""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    ns = {}
    with open(os.path.join(HERE, "kvm_providers", "_version.py"), encoding="utf-8") as f:
        exec(f.read(), ns)  # pylint: disable=exec-used
    return ns["__version__"]


def _data_files(top, suffixes):
    """Files below `top`, grouped by directory, installed under share/kvm-providers.

    The MOF and registration files live at the top of the source tree (the
    design card's layout); installed, they land in <prefix>/share/kvm-providers,
    where kvm_providers.schema and the register command look for them.
    """
    groups = {}
    for root, _dirs, files in os.walk(os.path.join(HERE, top)):
        for name in sorted(files):
            if name.endswith(suffixes):
                rel_dir = os.path.relpath(root, HERE)
                groups.setdefault(os.path.join("share", "kvm-providers", rel_dir), []).append(
                    os.path.join(rel_dir, name))
    return sorted(groups.items())


setup(
    name="kvm-providers",
    version=_version(),
    description="DMTF system virtualization CIM providers for libvirt, "
                "with an embedded WBEM server",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="LGPL-2.1-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["kvm_providers", "kvm_providers.*"]),
    # cmpi-bindings imports this top-level module by name (see docs/cmpi.md).
    py_modules=["cmpi_pywbem_bindings"],
    package_data={"kvm_providers": ["py.typed"]},
    data_files=_data_files("mof", (".mof",)) + _data_files("registration", (".reg", ".mof")),
    install_requires=[
        "pywbem>=1.7,<2",
        "lxml>=4.9",
        "libvirt-python>=9.0",
        # /metrics (issue 15): the Prometheus text format from the well-kept reference
        # library, not a hand-written exposition
        "prometheus_client>=0.16,<1",
    ],
    extras_require={
        # ruff and mypy are the CI gates (make lint); pinned so that a new
        # release's new rules cannot turn main red by themselves.
        "test": ["pytest>=7", "pywbemtools>=1.2", "ruff==0.17.6", "mypy==2.4.1",
                 # the live page's browser test drives Debian's chromium (chromium-driver)
                 "selenium>=4.10,<5"],
    },
    entry_points={
        "console_scripts": [
            "kvm-cimom = kvm_providers.cimom.__main__:main",
            "kvm-providers-register = kvm_providers.registry.register:main",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: System :: Systems Administration",
    ],
)
