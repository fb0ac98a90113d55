"""Scoring completions against the originals, and comparing methods on the same images.

evalset     the fixed evaluation set: test images, one hole each
scoring     completions by a model or a baseline, and their per-image metrics
sweep       a run's checkpoints scored one after another
summaries   per-method means with bootstrap intervals, as CSV rows
paired      per-image differences of two methods, sign test, verdict
tables      result CSVs: write, read, merge
comparison  several models on one evaluation set, and report.md
study_scores  one run's per-image scores (LPIPS included) on one population, for the seed study
seed_study  the study's statistics over seeds and faces: which claims hold across seeds
seed_report the seed study's report.md, statistics.csv and curves
figures     metrics against the step, result grids
metrics     the per-image metrics (PSNR, SSIM, L1, the study's feature distance)
baselines   completion without training: mean fill, OpenCV inpainting
perceptual  LPIPS
stats       bootstrap intervals and the sign test (scipy.stats)
pasted_masks    completion models given the true pasted mask on held-out faces
photo_pipeline  the whole photo pipeline on held-out pasted masks, against Telea
detection   the face detector's recall, false positives and the masked-face rule
face_comparison  several complete.py runs face by face for judging by eye (blind), and the tally
"""
