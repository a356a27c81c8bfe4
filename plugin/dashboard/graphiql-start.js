// Starts GraphiQL (embedded in the binary, no CDN) on the page served at
// GET /graphql. Queries go to the page's own address made absolute, so they
// reach the API behind a proxy that serves it under a prefix
// (/refrain/graphql) as well as at the root. An admin key given in the
// address's fragment (#key=...; a fragment never reaches a server or a log)
// fills the Authorization header, then is removed from the address bar.
"use strict";

(function () {
  var endpoint = location.origin + location.pathname;
  var headers = "";
  var m = /(?:^|&)key=([^&]+)/.exec(location.hash.slice(1));
  if (m) {
    headers = JSON.stringify({ Authorization: "Bearer " + decodeURIComponent(m[1]) }, null, 2);
    history.replaceState(null, "", location.pathname + location.search);
  }
  var defaultQuery = "# Refrain's API: every field is under refrain { ... }.\n" +
    "# An admin key goes in the Headers tab below: {\"Authorization\": \"Bearer KEY\"}.\n" +
    "{\n  refrain {\n    programs {\n      id\n      title\n      objective\n    }\n  }\n}\n";
  var root = document.getElementById("graphiql");
  root.textContent = "";
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url: endpoint }),
    defaultQuery: defaultQuery,
    headers: headers,
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: headers ? "headers" : false,
  }));
})();
