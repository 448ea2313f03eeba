// Upload from the view: a drop zone and a file picker. No host lets a view attach a file to the
// conversation, so the view reads the image the person chose, makes it small enough for one MCP
// message (hosts and this server's HTTP transport take about 1 MiB a request), and sends it to the
// app-only upload_image, which keeps it for this person's edits and answers its reference
// (upload:<id>). The view then offers to edit it, and tells the model the reference.

// Bytes of the image sent (before base64, which adds a third), and its longest side.
const UPLOAD_BUDGET = 700 * 1024;
const UPLOAD_SIDE = 2048;
// Uploads made here: reference → data URL, for their cards and the edits' "Before".
const uploadsMade = new Map();

const readAsDataUrl = (blob) => new Promise((resolve, reject) => {
  const reader = new FileReader();
  reader.onload = () => resolve(reader.result);
  reader.onerror = () => reject(new Error("the file could not be read"));
  reader.readAsDataURL(blob);
});

// The image as it is, when small enough; else drawn smaller as a JPEG until it fits.
async function fitForUpload(file) {
  if (!/^image\/(png|jpeg|webp)$/.test(file.type)) throw new Error("Choose a PNG, JPEG or WebP image.");
  const bitmap = await createImageBitmap(file).catch(() => { throw new Error("The file is not an image this browser can read."); });
  const longest = Math.max(bitmap.width, bitmap.height);
  const size = { width: bitmap.width, height: bitmap.height };
  if (file.size <= UPLOAD_BUDGET && longest <= UPLOAD_SIDE) return { src: await readAsDataUrl(file), ...size };
  let side = Math.min(UPLOAD_SIDE, longest);
  for (let attempt = 0; attempt < 6; attempt++) {
    const scale = side / longest;
    const canvas = el("canvas", { width: Math.max(1, Math.round(bitmap.width * scale)), height: Math.max(1, Math.round(bitmap.height * scale)) });
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    if (blob && blob.size <= UPLOAD_BUDGET) return { src: await readAsDataUrl(blob), width: canvas.width, height: canvas.height };
    side = Math.round(side * 0.75);
  }
  throw new Error("The image could not be made small enough to upload.");
}

async function uploadFile(file) {
  const note = uploadNode.querySelector(".note.action");
  note.className = "note action";
  note.textContent = `Uploading ${cut(file.name, 60)}…`;
  try {
    const image = await fitForUpload(file);
    const { data } = await callTool("upload_image", { image: image.src, name: cut(file.name, 200) });
    uploadsMade.set(data.reference, image.src);
    uploadNode.querySelector("[data-field=uploads]").append(uploadCard(data.reference, image.src, file.name));
    note.textContent = `Uploaded ${cut(file.name, 60)}: ${data.reference}.`;
    tellModel(`In the image viewer the user uploaded an image (${cut(file.name, 80)}), kept as ${data.reference}: to edit it, pass images: ["${data.reference}"] to generate_image with a prompt saying what to change.`);
  } catch (error) {
    note.className = "note action bad";
    note.textContent = `Not uploaded: ${error.message}`;
  }
}

function uploadCard(reference, src, name) {
  const label = `your upload ${cut(name, 60)}`;
  const edit = editBox(reference, label);
  return el("figure", { class: "tile upload", "data-upload": reference },
    el("img", { alt: `Your upload ${cut(name, 60)}`, src, "data-role": "upload", "data-ref": reference }),
    el("figcaption", { class: "muted" }, `${cut(name, 60)} · ${reference}`),
    el("div", { class: "actions" },
      el("button", { class: "paid", "data-action": "edit-upload", "aria-expanded": "false", "aria-label": `Edit ${label}`, onclick: (e) => {
        edit.hidden = !edit.hidden;
        e.currentTarget.setAttribute("aria-expanded", String(!edit.hidden));
        if (!edit.hidden) edit.querySelector("input").focus();
      } }, "Edit this…")),
    edit);
}

// One panel for the view's life, moved into each render, so that a half-typed edit survives.
const uploadNode = (() => {
  const input = el("input", { type: "file", accept: "image/png,image/jpeg,image/webp", "aria-label": "Choose a photo to edit", "data-field": "upload-input" });
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) uploadFile(input.files[0]);
    input.value = "";
  });
  const zone = el("label", { class: "drop", "data-field": "upload" }, input, "Drop a photo here, or click to choose one, to edit it");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) uploadFile(file);
  });
  return el("section", { class: "upload", "aria-label": "Upload a photo to edit" },
    zone, el("div", { class: "note action", role: "status" }), el("div", { class: "grid", "data-field": "uploads" }));
})();

function uploadPanel() {
  return uploadNode;
}
