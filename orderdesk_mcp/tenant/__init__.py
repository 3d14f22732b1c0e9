"""The tenant self-service pages under /tenant/ (stores, API keys, connected apps, activity,
account), on the OAuth pages' sign-in sessions, CSRF tokens and layout."""
