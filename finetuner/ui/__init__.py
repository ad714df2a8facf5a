"""The Gradio web app. Only this package (and app.py) imports gradio."""
