use super::*;

const SESSION: Duration = Duration::from_secs(10);

fn request(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), Bytes::from_static(b"meta"))],
        session_timeout: SESSION,
        rebalance_timeout: Duration::from_secs(30),
        requires_known_member_id: true,
    }
}

fn now_answer<T: std::fmt::Debug>(outcome: Outcome<T>) -> T {
    match outcome {
        Outcome::Now(answer) => answer,
        Outcome::Later(_) => panic!("expected an immediate answer"),
    }
}

fn later<T>(outcome: Outcome<T>) -> oneshot::Receiver<T> {
    match outcome {
        Outcome::Later(rx) => rx,
        Outcome::Now(_) => panic!("expected a pending answer"),
    }
}

/// Joins a new dynamic member through MEMBER_ID_REQUIRED; returns its id and join receiver.
fn join_new(group: &mut Group, now: Instant) -> (String, oneshot::Receiver<JoinResponse>) {
    let first = now_answer(group.join(request("", None), now));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    let id = first.member_id;
    let rx = later(group.join(request(&id, None), now));
    (id, rx)
}

#[test]
fn two_members_join_sync_and_become_stable() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    let (a, mut ra) = join_new(&mut g, t);
    // One member, initial delay zero: the rebalance completes at once.
    let ja = ra.try_recv().unwrap();
    assert_eq!(ja.generation, 1);
    assert_eq!(ja.leader, a);
    assert_eq!(ja.members.len(), 1);
    let rs = later(g.sync(
        &a,
        None,
        1,
        vec![(a.clone(), Bytes::from_static(b"all"))],
        t,
    ));
    drop(rs);
    assert_eq!(g.state, GroupState::Stable);
    // A second member triggers a rebalance; the first learns it by heartbeat.
    let (b, mut rb) = join_new(&mut g, t);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&a, None, 1, t),
        ResponseError::RebalanceInProgress.code()
    );
    assert!(rb.try_recv().is_err());
    let mut ra = later(g.join(request(&a, None), t));
    let (ja, jb) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
    assert_eq!(ja.generation, 2);
    assert_eq!(jb.generation, 2);
    assert_eq!(ja.members.len(), 2, "the leader sees every member");
    assert!(jb.members.is_empty());
    let mut sb = later(g.sync(&b, None, 2, vec![], t));
    assert!(sb.try_recv().is_err(), "followers wait for the leader");
    let mut sa = later(g.sync(
        &a,
        None,
        2,
        vec![
            (a.clone(), Bytes::from_static(b"p0")),
            (b.clone(), Bytes::from_static(b"p1")),
        ],
        t,
    ));
    assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from_static(b"p1"));
    assert_eq!(sa.try_recv().unwrap().assignment, Bytes::from_static(b"p0"));
    assert_eq!(
        g.heartbeat(&b, None, 1, t),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(g.heartbeat(&b, None, 2, t), 0);
}

#[test]
fn expired_member_is_removed_and_the_rest_rebalance() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    let (a, _ra) = join_new(&mut g, t);
    let _ = g.sync(&a, None, 1, vec![], t);
    let (b, _rb) = join_new(&mut g, t);
    let _ra = g.join(request(&a, None), t);
    let _ = g.sync(&a, None, 2, vec![], t);
    assert_eq!(g.state, GroupState::Stable);
    // Only b heartbeats; a's session runs out.
    let later_t = t + SESSION - Duration::from_secs(1);
    assert_eq!(g.heartbeat(&b, None, 2, later_t), 0);
    g.tick(t + SESSION + Duration::from_secs(1));
    assert!(!g.members.contains_key(&a));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let mut rb = later(g.join(request(&b, None), t + SESSION + Duration::from_secs(2)));
    let jb = rb.try_recv().unwrap();
    assert_eq!(jb.generation, 3);
    assert_eq!(jb.leader, b);
}

#[test]
fn static_member_restart_keeps_the_assignment_without_rebalance() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    let mut r1 = later(g.join(request("", Some("i1")), t));
    let leader = r1.try_recv().unwrap().member_id;
    let mut r2 = later(g.join(request("", Some("i2")), t));
    drop(later(g.join(request(&leader, Some("i1")), t)));
    let follower = r2.try_recv().unwrap().member_id;
    let _ = g.sync(
        &leader,
        Some("i1"),
        2,
        vec![(follower.clone(), Bytes::from_static(b"x"))],
        t,
    );
    assert_eq!(g.state, GroupState::Stable);
    let generation = g.generation;
    // The follower restarts: same instance id, no member id.
    let answer = now_answer(g.join(request("", Some("i2")), t));
    assert_eq!(answer.error, 0);
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.generation, generation);
    let sync = now_answer(g.sync(&answer.member_id, Some("i2"), generation, vec![], t));
    assert_eq!(sync.assignment, Bytes::from_static(b"x"));
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(&follower, Some("i2"), generation, t),
        ResponseError::FencedInstanceId.code()
    );
}

#[test]
fn leaving_last_member_empties_the_group() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    let (a, _) = join_new(&mut g, t);
    assert_eq!(g.leave(&a, None, t), 0);
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.leave(&a, None, t), ResponseError::UnknownMemberId.code());
}

#[test]
fn unknown_member_and_inconsistent_protocols_are_refused() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    let answer = now_answer(g.join(request("nobody", None), t));
    assert_eq!(answer.error, ResponseError::UnknownMemberId.code());
    let (_a, _) = join_new(&mut g, t);
    let mut other = request("", None);
    other.protocols = vec![("roundrobin".to_string(), Bytes::new())];
    let answer = now_answer(g.join(other, t));
    assert_eq!(
        answer.error,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

#[test]
fn initial_delay_gathers_members_into_one_generation() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::from_secs(3));
    let (_a, mut ra) = join_new(&mut g, t);
    let (_b, mut rb) = join_new(&mut g, t + Duration::from_secs(1));
    assert!(ra.try_recv().is_err());
    g.tick(t + Duration::from_secs(4));
    assert_eq!(ra.try_recv().unwrap().generation, 1);
    assert_eq!(rb.try_recv().unwrap().generation, 1);
}

#[test]
fn static_leader_restart_keeps_leading_without_rebalance() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    let mut r1 = later(g.join(request("", Some("i1")), t));
    let leader = r1.try_recv().unwrap().member_id;
    let _ = g.sync(
        &leader,
        Some("i1"),
        1,
        vec![(leader.clone(), Bytes::from_static(b"mine"))],
        t,
    );
    assert_eq!(g.state, GroupState::Stable);
    let answer = now_answer(g.join(request("", Some("i1")), t));
    assert_eq!(answer.error, 0);
    assert!(answer.skip_assignment);
    assert_eq!(answer.leader, answer.member_id);
    assert_eq!(g.generation, 1);
    assert_eq!(g.state, GroupState::Stable);
    let sync = now_answer(g.sync(&answer.member_id, Some("i1"), 1, vec![], t));
    assert_eq!(sync.assignment, Bytes::from_static(b"mine"));
}

#[test]
fn member_ids_start_with_client_id_or_instance_id() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    let (dynamic, _rx) = join_new(&mut g, t);
    assert!(dynamic.starts_with("c-"), "{dynamic}");
    let mut rs = later(g.join(request("", Some("instance-1")), t));
    drop(later(g.join(request(&dynamic, None), t)));
    let first = rs.try_recv().unwrap().member_id;
    assert!(first.starts_with("instance-1-"), "{first}");
    // A restarted static member gets a fresh id with the same prefix.
    drop(g.join(request("", Some("instance-1")), t));
    let again = g
        .members
        .values()
        .find(|m| m.instance_id.as_deref() == Some("instance-1"))
        .map(|m| m.id.clone())
        .unwrap();
    assert!(
        again.starts_with("instance-1-") && again != first,
        "{again}"
    );
    let member = &g.members[&dynamic];
    assert_eq!(
        (member.client_id.as_str(), member.client_host.as_str()),
        ("c", "/127.0.0.1")
    );
}

#[test]
fn a_stable_group_records_its_members_and_an_emptied_one_none() {
    let t = Instant::now();
    let mut g = Group::new("g".into(), Duration::ZERO);
    assert!(!g.is_recordable(), "never formed");
    let (a, mut ra) = join_new(&mut g, t);
    ra.try_recv().unwrap();
    assert!(!g.is_recordable(), "the assignment is not out yet");
    drop(later(g.sync(
        &a,
        None,
        1,
        vec![(a.clone(), Bytes::from_static(b"all"))],
        t,
    )));
    assert!(g.is_recordable());
    let r = g.record(77);
    assert_eq!(
        (r.generation, r.protocol.as_deref(), r.leader.as_deref()),
        (1, Some("range"), Some(a.as_str()))
    );
    assert_eq!(
        (r.protocol_type.as_str(), r.current_state_timestamp),
        ("consumer", 77)
    );
    let m = &r.members[0];
    assert_eq!(
        (
            m.member_id.as_str(),
            m.client_id.as_str(),
            m.client_host.as_str()
        ),
        (a.as_str(), "c", "/127.0.0.1")
    );
    assert_eq!((m.session_timeout, m.rebalance_timeout), (10_000, 30_000));
    assert_eq!(m.subscription, b"meta");
    assert_eq!(m.assignment, b"all");
    assert_eq!(g.leave(&a, None, t), 0);
    assert!(g.is_recordable());
    let r = g.record(78);
    assert_eq!((r.generation, r.members.len(), r.leader), (2, 0, None));
}
