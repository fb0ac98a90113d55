"""The blind A/B survey: design (which images, which order), the web app, its database, the summary."""
