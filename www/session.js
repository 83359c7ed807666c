// The session badge of every page of the demo site.
//
// The session itself is the server's: its SID cookie is HttpOnly, so this
// script cannot read it and does not need to. It asks /cgi-bin/whoami.py
// (which counts the view and answers {"user": NAME or null, "visits": N})
// and fills in:
//   #user-badge      in the header: the name, or a "Sign in" link (then
//                    data-ready="1", so a test knows the page is complete)
//   #session-status  "Signed in as NAME" or "Not signed in" (home page)
//   #session-visits  the page views of this session (home page)
//   #session-panel, #session-action  the home page's panel and its button
// Without JavaScript the header keeps its plain "Sign in" link.
(function () {
  'use strict';

  const LOGIN = '/cgi-bin/login.py';

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  }

  function show(me) {
    const badge = document.getElementById('user-badge');
    if (badge) {
      badge.replaceChildren();
      if (me.user) {
        const initial = Array.from(me.user)[0].toUpperCase();
        badge.append(el('a', {href: LOGIN, title: 'Your session'},
          el('span', {class: 'avatar', 'aria-hidden': 'true'}, initial),
          el('span', {class: 'name'}, me.user)));
      } else {
        badge.append(el('a', {href: LOGIN, class: 'signin'}, 'Sign in'));
      }
    }

    if (badge) badge.dataset.ready = '1';

    const status = document.getElementById('session-status');
    if (status) {
      status.replaceChildren();
      if (me.user) {
        status.append('Signed in as ', el('strong', {}, me.user));
      } else {
        status.append('Not signed in');
      }
      status.dataset.state = me.user ? 'in' : 'out';
    }

    const panel = document.getElementById('session-panel');
    if (panel) panel.dataset.state = me.user ? 'in' : 'out';
    const action = document.getElementById('session-action');
    if (action) action.textContent = me.user ? 'Your session' : 'Sign in';

    const visits = document.getElementById('session-visits');
    if (visits) {
      visits.textContent = !me.user
        ? 'Page views are counted once you sign in.'
        : me.visits === 1
          ? 'This is the first page you have viewed signed in.'
          : 'You have viewed ' + me.visits + ' pages signed in.';
      visits.dataset.visits = String(me.visits);
    }
  }

  async function load() {
    try {
      const r = await fetch('/cgi-bin/whoami.py', {cache: 'no-store', credentials: 'same-origin'});
      if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
      show(await r.json());
    } catch (e) {
      const status = document.getElementById('session-status');
      if (status) {
        status.textContent = 'Could not ask the server: ' + e.message;
        status.dataset.state = 'error';
      }
      const badge = document.getElementById('user-badge');
      if (badge) badge.dataset.ready = '1';
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', load);
  } else {
    load();
  }
})();
