// Express upstream for tests/differential: answers every request with what Express itself
// resolved (router, path after its own case-insensitive matching), the method it executed
// (after npm method-override) and every identity/forwarding header value it read.
'use strict';
const express = require('express');
const methodOverride = require('method-override');

const READ = require('../apps/read-headers.json');
const site = process.argv[3] || 'main'; // 'admin': this instance is the admin site itself
const app = express(); // default: case-insensitive, non-strict routing, like most Express apps

// The npm package's documented use: an allowed POST becomes whatever the header says.
for (const name of ['X-HTTP-Method-Override', 'X-Method-Override', 'X-HTTP-Method']) {
  app.use(methodOverride(name));
}
// ...and the other documented use: a `_method` query parameter (as Laravel and Rails do).
app.use(methodOverride((req) => req.query._method));

function report(resource) {
  return (req, res) => {
    const read = {};
    for (const name of READ) {
      const value = req.get(name);
      if (value !== undefined) read[name] = value;
    }
    res.json({
      server: 'express', resource, path: req.baseUrl + req.path, method: req.method,
      host: req.get('host') || '', read,
    });
  };
}

// Name-based virtual hosting, as an app serving several sites does it.
app.use((req, res, next) => {
  const host = (req.get('host') || '').toLowerCase().split(':')[0];
  if (site === 'admin' || host.startsWith('admin.')) return report('admin-host')(req, res);
  return next();
});
const admin = express.Router();
admin.all('*', report('admin'));
app.use('/admin', admin);
app.all('*', report('public'));

const port = Number(process.argv[2]);
app.listen(port, '127.0.0.1', () => console.log(`express listening on ${port}`));
