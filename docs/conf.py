"""Sphinx configuration: bin/sphinx builds these docs into out/html/."""
project = "TiMPE"
copyright = "TiMPE authors"
author = "TiMPE authors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
