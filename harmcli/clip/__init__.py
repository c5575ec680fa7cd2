"""Clips: videos and frame sequences harmonized with an adjustment smoothed over time (see :mod:`harmcli.clip.run`)."""
