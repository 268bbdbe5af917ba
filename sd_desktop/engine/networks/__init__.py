"""The three networks of Stable Diffusion 1.x, with attribute names that mirror checkpoint keys."""
