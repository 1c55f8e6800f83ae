"""Screens of the cockpit: the main screen, help, guards, info and the confirm dialog."""
