from setuptools import find_packages, setup

install_requires = [
    "pyramid>=2.0,<3",
    "PasteDeploy>=3",
    "gunicorn>=22",
    "gevent>=24",
    "simplejson>=3.19",
    "supervisor>=4.2",
    "requests>=2.31",
    "crate>=1.0",
    "jsonschema>=4.18",
    # bin/crash: the real CrateDB shell when the store is CrateDB.
    "crash>=0.31",
]

tests_require = [
    "pytest>=8",
    "pytest-timeout>=2",
    "WebTest>=3",
    "cratedb-sqlparse>=0.0.10",
    "openapi-spec-validator>=0.7",
    "schemathesis>=4,<5",
    "hypothesis>=6",
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
    extras_require={"test": tests_require, "docs": ["sphinx>=7"]},
    entry_points={
        "paste.app_factory": ["main = timpe:main"],
    },
)
