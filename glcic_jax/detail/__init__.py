"""Exemplar detail: a real face's fine texture on the completion network's smooth fill.

`transfer` holds the math (store frame, high-pass, matching, fades);
`donor_bank` builds, saves and loads the donors and lays the best one's
detail on a completed photo.
"""
