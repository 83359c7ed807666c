// A script served as text/javascript; nothing on the demo site loads it.
"use strict";

function greet(name) {
  return `Hello from ${name}!`;
}

console.log(greet("localserver"));
