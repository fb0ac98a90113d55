"""A browser page for people who want to see the face under a mask in their own photos.

    python -m glcic_jax.demo            # then open http://127.0.0.1:7860/

`jobs` keeps each upload and its results in a folder of its own under one
output folder; `app` is the Flask page (upload, see the region and the
completion, paint the region, complete again, download); `__main__` serves
it with waitress.
"""
