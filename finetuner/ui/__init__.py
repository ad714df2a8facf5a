"""The Gradio web app. Only this package (and app.py) imports gradio.

May import: every package below it; nothing but app.py imports it.
"""
