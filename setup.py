from setuptools import find_packages, setup

# Lower bounds here; the exact versions the suite passed with are in
# constraints.txt, which `make venv` installs from (`make lock` refreshes it).
install_requires = [
    "pyramid>=2.0,<3",
    "zope.interface>=6",
    "PasteDeploy>=3",
    "gunicorn>=22",
    "gevent>=24",
    "simplejson>=3.19",
    "supervisor>=4.2",
    "requests>=2.31",
    "jsonschema>=4.18",
    # GET /metrics: Prometheus text format, multiprocess-safe.
    "prometheus_client>=0.17",
    # Nicknames: RFC 8265 (PRECIS) usernames.
    "precis-i18n>=1.1",
    # Transaction ids: UUIDv7 (RFC 9562).
    "uuid-utils>=0.9",
]

# The store on a CrateDB cluster: its client, and bin/crash, the real CrateDB
# shell. `make run STORE=crate` installs them; a SQLite install carries neither.
crate_requires = [
    "crate>=1.0",
    "crash>=0.31",
]

# The operator commands; bin/<name> runs timpe-<name> (buildout.cfg maps them too).
console_scripts = [
    "timpe-app = timpe.cli.node:app",
    "timpe-supervisord = timpe.cli.node:supervisord",
    "timpe-supervisorctl = timpe.cli.node:supervisorctl",
    "timpe-crate_setup = timpe.cli.db:setup",
    "timpe-crate_cleanup = timpe.cli.db:cleanup",
    "timpe-crate_testdata = timpe.cli.db:testdata",
    "timpe-audit = timpe.cli.db:audit",
    "timpe-api_key = timpe.cli.keys:main",
    "timpe-crash = timpe.cli.crash:main",
    "timpe-u2u_transactions = timpe.cli.u2u:run_main",
    "timpe-benchmark = timpe.cli.benchmark:run_main",
    "timpe-sphinx = timpe.cli.docs:main",
    "timpe-test = timpe.cli.runner:main",
    "timpe-topology = timpe.cli.topology:main",
]

tests_require = [
    # The adapter's error mapping and every statement it sends are checked in
    # every run, CrateDB installed or not: with its client.
    "crate>=1.0",
    "orjson>=3",
    "urllib3>=2",
    "pytest>=8",
    "pytest-timeout>=2",
    "WebTest>=3",
    "cratedb-sqlparse>=0.0.10",
    "openapi-spec-validator>=0.7",
    "schemathesis>=4,<5",
    "hypothesis>=6",
    "zc.buildout>=3",
    "zc.recipe.egg>=2",
]

setup(
    name="timpe",
    version="1.0.0",
    description="TiMPE: user-to-user transfers on a shared-nothing, eventually consistent store",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    package_dir={"": "src"},
    packages=find_packages("src"),
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=install_requires,
    extras_require={"test": tests_require, "docs": ["sphinx>=7"], "crate": crate_requires},
    entry_points={
        "paste.app_factory": ["main = timpe:main"],
        "console_scripts": console_scripts,
    },
)
