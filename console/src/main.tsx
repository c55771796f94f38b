import { render } from "preact";
import { App } from "./app";
import { takeAuthorizationResponse } from "./oidc";
import { handleAuthorizationResponse } from "./pages/sign-in";
import "./style.css";

// First: an identity provider's code and state leave the address bar before anything renders.
handleAuthorizationResponse(takeAuthorizationResponse());
render(<App />, document.getElementById("app")!);
