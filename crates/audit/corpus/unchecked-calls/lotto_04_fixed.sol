pragma solidity ^0.4.18;

// The prize counts as paid only when send succeeded.
contract Lotto {
    bool public payedOut = false;
    address public winner;
    uint256 public winAmount;

    function Lotto() public {
        winner = msg.sender;
        winAmount = 1 ether;
    }

    function sendToWinner() public {
        require(!payedOut);
        payedOut = true;
        require(winner.send(winAmount));
    }

    function withdrawLeftOver() public {
        require(payedOut);
        require(msg.sender == winner);
        msg.sender.transfer(this.balance);
    }
}
