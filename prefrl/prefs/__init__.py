"""Preferences: clips, the preference store, pair selection and the label schedule."""
