pragma solidity ^0.5.0;

// A mutex modifier guards the claim, so the late update is no longer reachable by re-entry.
contract RewardPool {
    mapping(address => uint256) public rewards;
    uint256 public paidOut;
    bool private locked;

    modifier noReentry() {
        require(!locked);
        locked = true;
        _;
        locked = false;
    }

    modifier recordPayout(uint256 amount) {
        _;
        paidOut += amount;
        rewards[msg.sender] = 0;
    }

    function fund(address who) public payable {
        rewards[who] = rewards[who] + msg.value;
    }

    function claim() public noReentry recordPayout(rewards[msg.sender]) {
        (bool ok, ) = msg.sender.call.value(rewards[msg.sender])("");
        require(ok);
    }
}
