"""jinja2 templates of the generated files (installed as acigen.templates)."""
