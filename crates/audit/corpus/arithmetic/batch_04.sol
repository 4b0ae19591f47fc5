pragma solidity ^0.4.16;

library SafeMath {
    function sub(uint256 a, uint256 b) internal pure returns (uint256) {
        assert(b <= a);
        return a - b;
    }

    function add(uint256 a, uint256 b) internal pure returns (uint256) {
        uint256 c = a + b;
        assert(c >= a);
        return c;
    }
}

// The batch amount is multiplied without a check, so a huge value wraps to almost nothing.
contract BatchToken {
    using SafeMath for uint256;
    mapping(address => uint256) balances;

    function BatchToken() public {
        balances[msg.sender] = 10 ** 27;
    }

    function batchTransfer(address[] receivers, uint256 value) public returns (bool) {
        uint256 cnt = receivers.length;
        uint256 amount = uint256(cnt) * value; // expect: arithmetic
        require(cnt > 0 && cnt <= 20);
        require(value > 0 && balances[msg.sender] >= amount);
        balances[msg.sender] = balances[msg.sender].sub(amount);
        for (uint256 i = 0; i < cnt; i++) {
            balances[receivers[i]] = balances[receivers[i]].add(value);
        }
        return true;
    }
}
