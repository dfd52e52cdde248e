// Copies the language files from the repository's grammar/ folder (their one source) into syntaxes/,
// where package.json's contributions point. syntaxes/ is git-ignored; compile and packaging run this first.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const extension = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(extension, "..", "grammar");
const target = join(extension, "syntaxes");
const files = ["remap.tmLanguage.json", "language-configuration.json", "snippets.json"];

mkdirSync(target, { recursive: true });
for (const file of files) {
  copyFileSync(join(source, file), join(target, file));
}
console.log(`synced ${files.join(", ")} from ${source}`);
