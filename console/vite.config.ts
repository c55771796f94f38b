// Preact's JSX through esbuild's automatic runtime: no framework plugin needed.
import { defineConfig } from "vite";

// `npm run dev` proxies the API to a running local stack (`erp up`) by the same paths as the
// gateway that serves the built console (devstack/console.py).
const EMPLOYEE = "http://127.0.0.1:8001";
const stack = {
  "/dev/sign-in": EMPLOYEE,
  "/employees": EMPLOYEE,
  "/leaves": EMPLOYEE,
  "/attendance": EMPLOYEE,
  "/holidays": EMPLOYEE,
  "/approvals": "http://127.0.0.1:8002",
  "/process": "http://127.0.0.1:8003",
  "/ws": { target: "ws://127.0.0.1:8004", ws: true },
};

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { target: "es2020", sourcemap: false },
  server: { proxy: stack },
});
