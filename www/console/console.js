// srsd console: reads the SRS API of its own origin every 2 s and shows it for people.
// Plain JavaScript, no build step, no framework; the page is embedded in the srsd binary.
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var state = { info: null, prev: null, frames: {}, bytes: {}, configLoaded: false };

  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function kbps(n) {
    if (n == null || isNaN(n)) return '—';
    return n >= 10000 ? (n / 1000).toFixed(1) + ' Mbps' : Math.round(n) + ' kbps';
  }
  function kib(kb) { // a size in KiB
    if (kb == null) return '—';
    if (kb >= 1048576) return (kb / 1048576).toFixed(2) + ' GiB';
    if (kb >= 1024) return (kb / 1024).toFixed(1) + ' MiB';
    return kb + ' KiB';
  }
  function dur(s) {
    s = Math.max(0, Math.floor(s || 0));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
      m = Math.floor(s % 3600 / 60), r = s % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + r + 's';
    return r + 's';
  }
  // kbps in/out of a stream or client: from its byte counters since the last refresh (the
  // API's 30 s average lags a new stream), else that average.
  function rates(key, o, now) {
    var p = state.bytes[key], r = [o.kbps.recv_30s, o.kbps.send_30s];
    if (p && now > p.t) {
      // A stream's counters are sums over its clients: one leaving must not read as negative.
      r = [Math.max(0, (o.recv_bytes - p.r) * 8 / (now - p.t)),
        Math.max(0, (o.send_bytes - p.s) * 8 / (now - p.t))];
    }
    state.bytes[key] = { r: o.recv_bytes, s: o.send_bytes, t: now };
    return 'in ' + kbps(r[0]) + ' · out ' + kbps(r[1]);
  }
  function pct(f) { return f == null ? '—' : (f * 100).toFixed(1) + '%'; }

  function api(path, method) {
    return fetch(path, { method: method || 'GET', cache: 'no-store' }).then(function (r) {
      if (!r.ok && r.status !== 200) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function setHtml(el, html) { if (el.innerHTML !== html) el.innerHTML = html; }
  function status(msg, bad) {
    var s = $('status');
    s.textContent = msg;
    s.className = bad ? 'err' : 'muted';
  }

  // Tabs: the location hash picks the section.
  function showTab() {
    var tab = (location.hash || '#overview').slice(1);
    if (!$(tab)) tab = 'overview';
    ['overview', 'streams', 'clients', 'config'].forEach(function (t) {
      $(t).hidden = t !== tab;
    });
    Array.prototype.forEach.call(document.querySelectorAll('nav a'), function (a) {
      a.className = a.getAttribute('data-tab') === tab ? 'on' : '';
    });
    if (tab === 'config' && !state.configLoaded) loadConfig();
  }
  window.addEventListener('hashchange', showTab);

  function tile(k, v, id) {
    return '<div class="tile"' + (id ? ' id="' + id + '"' : '') + '><div class="k">' + esc(k) +
      '</div><div class="v">' + esc(v) + '</div></div>';
  }

  function renderOverview(sum, streams, clients) {
    var self = sum.self || {}, sys = sum.system || {};
    var rin = null, rout = null, p = state.prev;
    if (p && sys.srs_sample_time > p.srs_sample_time) {
      var secs = (sys.srs_sample_time - p.srs_sample_time) / 1000;
      rin = (sys.srs_recv_bytes - p.srs_recv_bytes) * 8 / 1000 / secs;
      rout = (sys.srs_send_bytes - p.srs_send_bytes) * 8 / 1000 / secs;
    } else {
      rin = clients.reduce(function (a, c) { return a + c.kbps.recv_30s; }, 0);
      rout = clients.reduce(function (a, c) { return a + c.kbps.send_30s; }, 0);
    }
    state.prev = sys;
    setHtml($('tiles'),
      tile('Version', self.version) +
      tile('Uptime', dur(self.srs_uptime)) +
      tile('CPU (srsd)', pct(self.cpu_percent)) +
      tile('CPU (system)', pct(sys.cpu_percent) + ' of ' + (sys.cpus_online || '?')) +
      tile('Memory (srsd)', kib(self.mem_kbyte)) +
      tile('Memory (system)', pct(sys.mem_ram_percent) + ' of ' + kib(sys.mem_ram_kbyte)) +
      tile('Network in', kbps(rin)) +
      tile('Network out', kbps(rout)) +
      tile('Connections', sys.conn_srs) +
      tile('Streams', streams.length) +
      tile('Clients', clients.length) +
      tile('Load', sys.load_1m != null ? sys.load_1m.toFixed(2) : '—'));
  }

  function vhostOf(id) {
    var vs = (state.info && state.info.vhosts) || [];
    for (var i = 0; i < vs.length; i++) if (vs[i].id === id) return vs[i];
    return null;
  }
  function fill(t, s) { return t.replace(/\[app\]/g, s.app).replace(/\[stream\]/g, s.name); }

  // The URLs a stream plays at, from the vhost's mounts (info.json).
  function playUrls(s, vh) {
    var info = state.info || {}, host = location.hostname, out = [];
    if (host.indexOf(':') >= 0) host = '[' + host + ']';
    var named = vh && vh.name !== '__defaultVhost__';
    out.push(['RTMP', 'rtmp://' + host + ':' + info.rtmp_port + '/' + s.app + '/' + s.name +
      (named ? '?vhost=' + vh.name : '')]);
    if (info.http_port && vh) {
      var base = 'http://' + host + ':' + info.http_port;
      if (vh.remux) {
        var rb = 'http://' + (vh.remux_host || host) + ':' + info.http_port;
        var flv = fill(vh.remux, s);
        out.push(['HTTP-FLV', rb + flv]);
        if (/\.flv$/.test(flv)) out.push(['HTTP-TS', rb + flv.replace(/\.flv$/, '.ts')]);
      }
      if (vh.hls) out.push(['HLS', base + fill(vh.hls, s)]);
    }
    return out;
  }

  function codecs(s) {
    var v = s.video, a = s.audio, out = [];
    if (v) out.push(v.codec + (v.profile ? ' ' + v.profile : '') + (v.level ? ' ' + v.level : '') +
      (v.width ? ' ' + v.width + '×' + v.height : ''));
    if (a) out.push(a.codec + (a.profile ? ' ' + a.profile : '') + ' ' +
      (a.sample_rate / 1000) + ' kHz ' + a.channel + 'ch');
    return out.length ? out.join(', ') : 'waiting for media';
  }

  function renderStreams(streams, clients, now) {
    var byId = {};
    clients.forEach(function (c) { byId[c.id] = c; });
    var frames = {};
    ((state.info && state.info.streams) || []).forEach(function (f) { frames[f.id] = f.video_frames; });
    var html = streams.map(function (s) {
      var vh = vhostOf(s.vhost), pub = s.publish && s.publish.active && byId[s.publish.cid];
      var prev = state.frames[s.id], fps = '—';
      if (prev && frames[s.id] != null && now > prev.t) {
        fps = ((frames[s.id] - prev.n) * 1000 / (now - prev.t)).toFixed(1);
      }
      if (frames[s.id] != null) state.frames[s.id] = { n: frames[s.id], t: now };
      var edge = s.edge ? s.edge.direction + ' ' + s.edge.state + ' (' + s.edge.upstream + ')' : 'origin';
      var fwd = vh && vh.forward && vh.forward.length ? vh.forward.join(', ') : 'off';
      var q = 'app=' + encodeURIComponent(s.app) + '&stream=' + encodeURIComponent(s.name) +
        (vh && vh.name !== '__defaultVhost__' ? '&vhost=' + encodeURIComponent(vh.name) : '');
      return '<div class="card stream" data-id="' + esc(s.id) + '">' +
        '<h3>' + esc((vh && vh.name !== '__defaultVhost__' ? vh.name : '') + s.url) + '</h3>' +
        '<div><span class="chip' + (vh && vh.hls ? ' on' : '') + '">HLS ' + (vh && vh.hls ? 'on' : 'off') +
        '</span><span class="chip' + (vh && vh.dvr ? ' on' : '') + '">DVR ' + (vh && vh.dvr ? 'on' : 'off') +
        '</span><span class="chip' + (s.publish && s.publish.active ? ' on' : '') + '">' +
        (s.publish && s.publish.active ? 'live' : 'idle') + '</span></div>' +
        '<dl><dt>Codecs</dt><dd>' + esc(codecs(s)) + '</dd>' +
        '<dt>FPS</dt><dd>' + esc(fps) + '</dd>' +
        '<dt>Bitrate</dt><dd>' + rates('s' + s.id, s, now) + '</dd>' +
        '<dt>Clients</dt><dd>' + esc(s.clients) + '</dd>' +
        '<dt>Published</dt><dd>' + (pub ? esc(dur(pub.alive)) + ' ago' : '—') + '</dd>' +
        '<dt>Edge</dt><dd>' + esc(edge) + '</dd>' +
        '<dt>Forward</dt><dd>' + esc(fwd) + '</dd></dl>' +
        playUrls(s, vh).map(function (u) {
          return '<div class="url"><span>' + esc(u[0]) + '</span><input readonly value="' + esc(u[1]) +
            '"><button data-copy>Copy</button></div>';
        }).join('') +
        '<div class="actions"><a class="btn primary" href="play.html?' + esc(q) + '">Play</a></div></div>';
    }).join('');
    setHtml($('streamlist'), html || '<p class="muted">No stream.</p>');
    $('nstreams').textContent = '(' + streams.length + ')';
  }

  function renderClients(clients, now) {
    var html = clients.map(function (c) {
      return '<div class="card client" data-id="' + esc(c.id) + '">' +
        '<h3>' + esc(c.type) + ' <span class="muted">#' + esc(c.id) + '</span></h3>' +
        '<dl><dt>IP</dt><dd>' + esc(c.ip) + '</dd>' +
        '<dt>Stream</dt><dd>' + esc(c.url || '—') + '</dd>' +
        '<dt>Duration</dt><dd>' + esc(dur(c.alive)) + '</dd>' +
        '<dt>Bitrate</dt><dd>' + rates('c' + c.id, c, now) + '</dd></dl>' +
        '<div class="actions"><button class="danger" data-kick="' + esc(c.id) + '">Kick</button></div></div>';
    }).join('');
    setHtml($('clientlist'), html || '<p class="muted">No client.</p>');
    $('nclients').textContent = '(' + clients.length + ')';
  }

  var busy = false;
  function refresh() {
    if (busy) return;
    busy = true;
    Promise.all([
      api('/api/v1/summaries'), api('/api/v1/streams?count=1000'),
      api('/api/v1/clients?count=1000'), api('info.json')
    ]).then(function (r) {
      state.info = r[3];
      var now = Date.now(), streams = r[1].streams || [], clients = r[2].clients || [];
      renderOverview(r[0].data || {}, streams, clients);
      renderStreams(streams, clients, now);
      renderClients(clients, now);
      $('reloadbox').hidden = !state.info.reload;
      status('updated ' + new Date(now).toLocaleTimeString());
    }).catch(function (e) {
      status('API unreachable: ' + e.message, true);
    }).then(function () { busy = false; });
  }

  function loadConfig() {
    state.configLoaded = true;
    fetch('config.toml', { cache: 'no-store' }).then(function (r) { return r.text(); })
      .then(function (t) { $('configtext').textContent = t; })
      .catch(function (e) { $('configtext').textContent = 'cannot read the config: ' + e.message; });
  }

  function copy(input, button) {
    var done = function () { button.textContent = 'Copied'; setTimeout(function () { button.textContent = 'Copy'; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { input.select(); });
    } else {
      input.focus();
      input.select();
      try { if (document.execCommand('copy')) done(); } catch (e) { /* selected for the user */ }
    }
  }

  document.addEventListener('click', function (ev) {
    var t = ev.target;
    if (t.hasAttribute('data-copy')) {
      copy(t.parentNode.querySelector('input'), t);
    } else if (t.hasAttribute('data-kick')) {
      var id = t.getAttribute('data-kick');
      if (!window.confirm('Kick client #' + id + '?')) return;
      api('/api/v1/clients/' + encodeURIComponent(id), 'DELETE').then(function (r) {
        status(r.code === 0 ? 'kicked #' + id : 'kick #' + id + ': code ' + r.code, r.code !== 0);
        refresh();
      }, function (e) { status('kick failed: ' + e.message, true); });
    } else if (t.id === 'reload') {
      $('reloadmsg').textContent = 'reloading…';
      api('/api/v1/raw?rpc=reload').then(function (r) {
        if (r.code !== 0) throw new Error('code ' + r.code);
        return new Promise(function (ok) { setTimeout(ok, 800); });
      }).then(function () { return api('/api/v1/raw?rpc=reload-fetch'); }).then(function (r) {
        var d = r.data || {};
        $('reloadmsg').textContent = d.err === 0 ? 'reloaded' : 'refused: ' + d.msg;
        $('reloadmsg').className = d.err === 0 ? 'okc' : 'err';
        loadConfig();
      }).catch(function (e) {
        $('reloadmsg').textContent = 'reload failed: ' + e.message;
        $('reloadmsg').className = 'err';
      });
    }
  });

  showTab();
  refresh();
  setInterval(refresh, 2000);
})();
