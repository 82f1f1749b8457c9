"""advfilter: build adversarially filtered multiple-choice datasets (SWAG / HellaSwag style)."""

__version__ = "0.1.0"
