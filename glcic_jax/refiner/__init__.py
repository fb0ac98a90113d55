"""The fine stage: a refiner that redraws the coarse fill at the face's own resolution."""
