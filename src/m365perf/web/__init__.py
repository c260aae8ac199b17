"""The service's web face: the bot endpoint for Teams and Outlook clicks, forms, status."""
