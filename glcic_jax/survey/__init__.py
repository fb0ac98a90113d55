"""The blind A/B survey: its design (images, hidden order), web app, answers and summary."""
