"""Noise to latents: noise schedules and one small function per sampler."""
