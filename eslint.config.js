// ESLint for the page's modules (app/static/js): the recommended rules, plus the size limits of the
// code base (lines of at most 120 characters, files of at most 450 lines). Run: make lint-js.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["app/static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: globals.browser,
    },
    rules: {
      "max-len": ["error", { code: 120 }],
      "max-lines": ["error", { max: 450 }],
    },
  },
];
