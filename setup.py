"""Packages are found, not listed, so a new subpackage cannot be left out of the wheel; server/ ships as
`remapdsl_server`, which `find_packages` cannot rename by itself."""

from setuptools import find_packages, setup

setup(packages=[
    *find_packages(include=["remapdsl", "remapdsl.*"]),
    "remapdsl_server",
    *(f"remapdsl_server.{name}" for name in find_packages("server")),
])
