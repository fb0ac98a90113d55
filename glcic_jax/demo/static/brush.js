// The region brush: the photo with its region tinted red; paint to add to it or erase from it.
// The region is kept at the photo's own size in a hidden canvas and sent as a PNG (white = fill).
"use strict";
for (const form of document.querySelectorAll("form.brush")) {
  const width = Number(form.dataset.width), height = Number(form.dataset.height);
  const view = form.querySelector("canvas");
  const shown = Math.min(width, 640) / width;  // display scale
  view.width = Math.round(width * shown);
  view.height = Math.round(height * shown);
  const mask = document.createElement("canvas");
  mask.width = width;
  mask.height = height;
  const maskCtx = mask.getContext("2d");
  const overlay = document.createElement("canvas");
  overlay.width = width;
  overlay.height = height;
  const photo = new Image(), region = new Image();
  let loaded = 0;

  function redraw() {
    const data = maskCtx.getImageData(0, 0, width, height);
    const tint = overlay.getContext("2d").createImageData(width, height);
    for (let i = 0; i < data.data.length; i += 4) {
      if (data.data[i] > 127) { tint.data[i] = 255; tint.data[i + 3] = 120; }
    }
    overlay.getContext("2d").putImageData(tint, 0, 0);
    const ctx = view.getContext("2d");
    ctx.drawImage(photo, 0, 0, view.width, view.height);
    ctx.drawImage(overlay, 0, 0, view.width, view.height);
  }
  function ready() {
    if (++loaded < 2) return;
    maskCtx.fillStyle = "black";
    maskCtx.fillRect(0, 0, width, height);
    maskCtx.drawImage(region, 0, 0);
    redraw();
    view.dataset.ready = "1";
  }
  photo.onload = ready;
  region.onload = ready;
  photo.src = form.dataset.input;
  region.src = form.dataset.region;

  let painting = false;
  function paint(event) {
    const box = view.getBoundingClientRect();
    const x = (event.clientX - box.left) * (width / box.width);
    const y = (event.clientY - box.top) * (height / box.height);
    const radius = Number(form.elements.size.value) / shown / 2;
    const add = form.elements.mode.value === "add";
    maskCtx.fillStyle = add ? "white" : "black";
    maskCtx.beginPath();
    maskCtx.arc(x, y, radius, 0, 2 * Math.PI);
    maskCtx.fill();
    const ctx = view.getContext("2d");  // a quick preview; the full redraw comes when the stroke ends
    ctx.fillStyle = add ? "rgba(255, 0, 0, 0.45)" : "rgba(255, 255, 255, 0.45)";
    ctx.beginPath();
    ctx.arc(x * shown, y * shown, radius * shown, 0, 2 * Math.PI);
    ctx.fill();
  }
  view.addEventListener("pointerdown", (e) => { painting = true; view.setPointerCapture(e.pointerId); paint(e); });
  view.addEventListener("pointermove", (e) => { if (painting) paint(e); });
  const stop = () => { if (painting) { painting = false; redraw(); } };
  view.addEventListener("pointerup", stop);
  view.addEventListener("pointercancel", stop);
  form.addEventListener("submit", () => { form.elements.region.value = mask.toDataURL("image/png"); });
}
