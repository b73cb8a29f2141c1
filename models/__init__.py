"""Flax (linen) score networks: NCSN++, DDPM++, NCSNv2 and DDPM (issue 3)."""
