// Offline API reference: renders /openapi.json without any external script.
"use strict";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function resolve(spec, schema) {
  if (schema && schema.$ref) return spec.components.schemas[schema.$ref.split("/").pop()];
  return schema;
}

async function main() {
  const token = sessionStorage.getItem("p21-token");
  const response = await fetch("/openapi.json", token ? { headers: { Authorization: "Bearer " + token } } : {});
  const ops = document.getElementById("ops");
  if (!response.ok) { ops.textContent = "cannot load /openapi.json: " + response.status; return; }
  const spec = await response.json();
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = el("div", "stage");
      box.style.maxWidth = "none";
      box.style.marginBottom = ".6rem";
      box.appendChild(el("div", "stage-head", `${method.toUpperCase()} ${path}`));
      box.appendChild(el("div", "", op.summary || ""));
      for (const p of op.parameters || []) box.appendChild(el("div", "muted", `${p.in} ${p.name}${p.required ? " (required)" : ""}`));
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      if (body) box.appendChild(el("pre", "", JSON.stringify(resolve(spec, body.schema), null, 2)));
      ops.appendChild(box);
    }
  }
}
main();
