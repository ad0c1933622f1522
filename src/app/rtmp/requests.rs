//! The requests of an RTMP connection: connect, then the admission of each publish or play
//! (name, vhost, refer/security, on_connect, token traverse) and what a publish or play
//! starts.

use super::*;

impl Conn<'_> {
    /// Answers connect. What the tcUrl says is checked (an rtmp:// URL with an app); the
    /// vhost, token traverse and the `on_connect` hook wait for the publish or play, as in
    /// SRS 6: only then are the stream, its query (`?vhost=`, tokens) and so the hook's
    /// `stream` and `param` known.
    pub(super) async fn on_connect(&mut self, id: u32, request: ConnectRequest) {
        if self.connected {
            // One connect per connection; a second one is a confused or hostile peer.
            self.session.reject_connect(id, "already connected");
            self.close_after_flush = true;
            return;
        }
        match url::parse_connect(&request.tc_url) {
            Ok(r) => {
                log::info!(
                    "connect app={}, tcUrl={}, vhost={}, pageUrl={}, swfUrl={}, flashVer={}",
                    r.app,
                    request.tc_url,
                    r.vhost,
                    request.page_url,
                    request.swf_url,
                    request.flash_ver
                );
                // The chunk size of the vhost the tcUrl names (the stream may still name
                // another; chunk size is a transport matter and stays as set here).
                let chunk_size = match self.config.resolve_vhost(&r.vhost) {
                    Some((_, v)) => self.config.chunk_size_for(v),
                    None => self.config.chunk_size,
                };
                self.session.set_chunk_size(chunk_size);
                self.who = ClientRequest {
                    client_id: self.cid,
                    ip: self.stat.ip.clone(),
                    app: r.app.clone(),
                    tc_url: request.tc_url.clone(),
                    page_url: request.page_url.clone(),
                    swf_url: request.swf_url.clone(),
                    flash_ver: request.flash_ver.clone(),
                    ..ClientRequest::default()
                };
                self.stat.update(|i| i.request = self.who.clone());
                self.tc_url = request.tc_url.clone();
                self.connect = request;
                self.connected = true;
                if let Some((name, v)) = self.config.resolve_vhost(&r.vhost) {
                    if v.bandcheck.enabled {
                        self.bandcheck = Some((id, name.to_string(), v.bandcheck.clone()));
                        return;
                    }
                }
                self.session.accept_connect(id);
            }
            Err(e) => {
                log::warn!("reject connect: tcUrl {:?}: {e}", request.tc_url);
                self.session.reject_connect(id, &e.to_string());
                self.close_after_flush = true;
            }
        }
    }

    /// The admission of a publish or play, in SRS 6's order with the name checked first:
    /// the stream's URL (an empty or unsafe name is refused before anything sees it), the
    /// vhost (the stream's `?vhost=` wins over the tcUrl's host), then once per connection
    /// [`session::connect`] (refer, security, `on_connect` carrying the stream and param,
    /// token traverse on an edge). Returns the request, its key and the vhost's config.
    ///
    /// SRS 6 runs on_connect here, not at `connect`: `SrsRtmpConn::stream_service_cycle`
    /// answers connect first, reads the publish/play name, discovers the request again from
    /// tcUrl + name, then calls `check_vhost` (which runs on_connect) and the token traverse.
    /// So on_connect's `stream` and `param` are the publish/play name's (where ffmpeg, OBS
    /// and SRS's own edges put a token). A client that never publishes or plays gets neither
    /// on_connect nor on_close.
    async fn admit(
        &mut self,
        stream_name: &str,
        action: Action,
    ) -> Result<(StreamRequest, StreamKey, VhostConfig), Denied> {
        let early = |d: Denied| {
            log::warn!("reject {action}: {d} (code {})", d.srs_code());
            self.ctx.denials.count(d.reason());
            d
        };
        if !self.connected {
            return Err(early(Denied::BadName(
                "publish or play before connect".into(),
            )));
        }
        let r = url::parse(&self.tc_url, stream_name)
            .map_err(|e| early(Denied::BadName(format!("{stream_name:?}: {e}"))))?;
        let (name, v) = self
            .config
            .resolve_vhost(&r.vhost)
            .map(|(name, v)| (name.to_string(), v.clone()))
            .ok_or_else(|| {
                early(Denied::Vhost(format!(
                    "vhost {} not found or disabled",
                    r.vhost
                )))
            })?;
        if let Some(first) = &self.vhost {
            if *first != name {
                return Err(early(Denied::Vhost(format!(
                    "vhost {name}: this connection already uses vhost {first}"
                ))));
            }
        }
        let key = StreamKey::new(&name, &r.app, &r.stream);
        if self.vhost.is_none() {
            let who = ClientRequest {
                vhost: name.clone(),
                app: r.app.clone(),
                stream: r.stream.clone(),
                param: r.param.clone(),
                ..self.who.clone()
            };
            let connected = session::connect(
                self.ctx,
                &v,
                action,
                &who,
                &key,
                &self.connect,
                self.stat.clone(),
            )
            .await?;
            self.connected_guard = Some(connected);
            self.stat.update(|i| i.request = who.clone());
            self.who = who;
            self.vhost = Some(name);
            // The connect's command object and extra arguments served token traverse (done
            // above, once per connection): not kept for the connection's life.
            self.connect.command_object = Vec::new();
            self.connect.extra_args = Vec::new();
        } else {
            // Later requests of the connection: refer and security again, for this action.
            let ip = self.peer_ip();
            session::check_access(&v, action, &self.connect.page_url, ip).map_err(&early)?;
        }
        Ok((r, key, v))
    }

    /// The client's address, for security rules (unspecified if the stats say otherwise).
    fn peer_ip(&self) -> std::net::IpAddr {
        self.stat
            .ip
            .parse()
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    /// The hook facts for a request on `key`.
    fn who_for(&self, r: &StreamRequest, key: &StreamKey, source_id: u32) -> ClientRequest {
        ClientRequest {
            stream: r.stream.clone(),
            param: r.param.clone(),
            stream_url: key.url(),
            stream_id: source_id.to_string(),
            ..self.who.clone()
        }
    }

    pub(super) async fn on_publish(&mut self, id: u32, stream_name: &str) -> io::Result<()> {
        self.publish_as(id, stream_name, None).await
    }

    /// A publish of `stream_name`; `decided` is the on_publish guard when the hook already
    /// ran (an nginx-rtmp style hook renamed the stream: it is not asked again).
    async fn publish_as(
        &mut self,
        id: u32,
        stream_name: &str,
        decided: Option<Option<Guard>>,
    ) -> io::Result<()> {
        let admitted = match self.admit(stream_name, Action::Publish).await {
            Ok((r, key, v)) => {
                let source = self.ctx.hub.source(&key, source_options(&v));
                let who = self.who_for(&r, &key, source.id);
                session::publish(self.ctx, &v, &source, self.cid, &who, decided)
                    .await
                    .map(|g| (r, key, v, source, who, g))
            }
            Err(d) => Err(d),
        };
        let (r, key, v, source, who, publishing) = match admitted {
            Ok((r, key, v, source, who, Gate::Admitted(p))) => (r, key, v, source, who, p),
            Ok((r, _, _, _, _, Gate::Renamed { to, hook })) => {
                // nginx-rtmp's publish redirect (hook_protocol = "nginx"): the stream takes
                // the Location's name, the query stays.
                let next = renamed(&to, &r.param);
                return Box::pin(self.publish_as(id, &next, Some(hook))).await;
            }
            Err(d) => {
                // NetStream.Publish.Start only after the hook allowed it: OBS otherwise
                // reconnects in a loop. SRS closes a refused publisher; encoders then retry
                // or give up.
                self.session
                    .reject_publish(id, d.publish_status(), &d.to_client());
                self.close_after_flush = true;
                return Ok(());
            }
        };
        let fmle = self.connect.flash_ver.starts_with("FMLE") || self.connect.flash_ver.is_empty();
        log::info!(
            "publish {key} param={} ({})",
            r.param,
            if fmle { "FMLE" } else { "flash" }
        );
        self.stat.update(|i| {
            i.request = who.clone();
            i.kind = Some(if fmle {
                ClientType::FmlePublish
            } else {
                ClientType::FlashPublish
            });
            i.key = Some(key.clone());
        });
        self.session.accept_publish(id);
        let outputs = crate::app::outputs::start(self.ctx, &v, &source, self.cid, &who, &r.param);
        self.role = Role::Publishing(PublishState {
            publisher: publishing.publisher,
            key,
            got_media: false,
            last_media: Instant::now(),
            first_timeout: v.publish.firstpkt_timeout.get(),
            normal_timeout: v.publish.normal_timeout.get(),
            msgs: 0,
            _hook: publishing.hook,
            outputs,
        });
        Ok(())
    }

    pub(super) async fn on_play(
        &mut self,
        id: u32,
        stream_id: u32,
        stream_name: &str,
        length_ms: Option<u32>,
    ) -> io::Result<()> {
        self.play_as(id, stream_id, stream_name, length_ms, None)
            .await
    }

    /// A play of `stream_name`, for `length_ms` of media when the client asked for a length
    /// (SRS 6 ends the play there, srs#45); `decided` as in [`Self::publish_as`].
    async fn play_as(
        &mut self,
        id: u32,
        stream_id: u32,
        stream_name: &str,
        length_ms: Option<u32>,
        decided: Option<Option<Guard>>,
    ) -> io::Result<()> {
        let admitted = match self.admit(stream_name, Action::Play).await {
            Ok((r, key, v)) => {
                let source = self.ctx.hub.source(&key, source_options(&v));
                let who = self.who_for(&r, &key, source.id);
                session::play(self.ctx, &v, &key, &who, decided)
                    .await
                    .map(|g| (r, key, v, source, who, g))
            }
            Err(d) => Err(d),
        };
        let (r, key, v, source, who, playing) = match admitted {
            Ok((r, key, v, source, who, Gate::Admitted(p))) => (r, key, v, source, who, p),
            Ok((r, _, _, _, _, Gate::Renamed { to, hook })) => {
                // nginx-rtmp's play redirect: play the Location's name instead.
                let next = renamed(&to, &r.param);
                return Box::pin(self.play_as(id, stream_id, &next, length_ms, Some(hook))).await;
            }
            Err(d) => {
                self.session
                    .reject_play(id, d.play_status(), &d.to_client());
                self.close_after_flush = true;
                return Ok(());
            }
        };
        let limits = QueueLimits {
            max_duration_ms: v.play.queue_length.as_millis_i64(),
            ..QueueLimits::default()
        };
        let consumer = source.subscribe(limits, play_jitter(&v, &source));
        // edge: the first player of an edge stream starts its pull (later ones share it).
        crate::app::cluster::edge::ensure_pull(
            self.ctx,
            &v,
            &source,
            &r.param,
            &self.connect.page_url,
            &self.connect.swf_url,
        );
        // edge: end.
        log::info!(
            "play {key} param={} (publishing={}{})",
            r.param,
            source.is_publishing(),
            length_ms
                .map(|ms| format!(", for {ms} ms"))
                .unwrap_or_default()
        );
        self.stat.update(|i| {
            i.request = who.clone();
            i.kind = Some(ClientType::RtmpPlay);
            i.key = Some(key.clone());
        });
        self.session.accept_play(id);
        self.role = Role::Playing(PlayState {
            consumer,
            key,
            stream_id,
            paused: false,
            mw_latency: v.play.mw_latency.get(),
            mw_msgs: v.mw_msgs(),
            primed: false,
            next_write: None,
            last_ts: [None; 2],
            tcp_nodelay: v.tcp_nodelay,
            publish_notify: v.play.publish_notify,
            msgs: 0,
            reported_drops: 0,
            length: length_ms.map(super::play::PlayLength::new),
            _playing: playing,
        });
        Ok(())
    }
}

/// The stream name an nginx-rtmp redirect asks for: the `Location`'s name, with the client's
/// query unless the Location brings its own.
fn renamed(to: &str, param: &str) -> String {
    if to.contains('?') {
        to.to_string()
    } else {
        format!("{to}{param}")
    }
}
