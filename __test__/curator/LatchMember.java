// A Curator LeaderLatch participant for zktx's interop tests (__test__/election-curator.test.js):
// compiled at test time with javac against Debian's libcurator-recipes-java jars.
//
// Usage: java LatchMember <connect> <path> <id> <sessionTimeoutMs>
// Prints one line per event on stdout: STARTED, LEADER <ourPath>, NOT_LEADER, STATE <state>,
// and answers commands read from stdin: "leader" (LEADER_IS <id>), "close" (CLOSED, the latch
// gives up its node), "exit".

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class LatchMember {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0], path = args[1], id = args[2];
        int sessionTimeoutMs = Integer.parseInt(args[3]);
        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(sessionTimeoutMs)
            .connectionTimeoutMs(5000)
            .retryPolicy(new ExponentialBackoffRetry(100, 10))
            .build();
        client.getConnectionStateListenable().addListener((c, state) -> say("STATE " + state));
        client.start();
        LeaderLatch latch = new LeaderLatch(client, path, id);
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                say("LEADER " + latch.getOurPath());
            }

            @Override
            public void notLeader() {
                say("NOT_LEADER");
            }
        });
        latch.start();
        say("STARTED");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String cmd;
        while ((cmd = in.readLine()) != null) {
            switch (cmd.trim()) {
                case "leader":
                    say("LEADER_IS " + latch.getLeader().getId());
                    break;
                case "close":
                    latch.close(LeaderLatch.CloseMode.NOTIFY_LEADER);
                    say("CLOSED");
                    break;
                case "exit":
                    client.close();
                    say("EXITED");
                    System.exit(0);
                    break;
                default:
                    say("UNKNOWN " + cmd);
            }
        }
        client.close();
    }
}
