"""exp_scripts package."""
